"""The Faust application: a thin adapter between Kafka and the pure core in ``stream.core``.

``create_app`` builds the app (topics, tables, agents, timers); ``sledfleet stream worker``
runs it. All computation, ordering and timing included, lives in ``stream.core``
(``timeline`` decides per machine what the core sees and at which device time); this
package decodes input, keeps one changelog-backed table value per machine and per
patient, and routes the core's records to their output topics (``agents``). Every touch
of Faust beyond its public API is in ``faust_port`` (Faust pinned exactly).

Faust 0.15 gotchas met on the way (each handled here, see the modules):

* ``table[key] = value`` inside ``take()`` writes the changelog to the partition of the
  *last* event of the batch, through a buffer whose ``flush()`` may return before it is
  empty (it gives up after 0.1 s without progress). Writes here name their partition and
  are awaited, outputs first, changelog second, acks last.
* The in-memory store never forgets keys written live (only keys restored from the
  changelog are dropped on revocation): ``table.items()`` is *not* limited to the
  assigned partitions. Ticks filter on the consumer's assignment.
* One agent over co-partitioned topics sees them in fetch order, not device-time order:
  a backlogged worker read a whole day of check-ins before the first frame. A machine's
  frames, events and state therefore travel on one topic (the bridge writes them there
  in the order it received them), and Kafka itself gives each machine's order.
* Awaiting Faust's consumer thread (``consumer.highwaters()``) from inside an agent can
  deadlock with the thread that is waiting to hand that agent messages.
* ``noack_take`` + messages held back unacked makes ``stream_wait_empty`` wait forever at
  the next rebalance (and at shutdown); messages are never held unacked here.
* A rebalance in the middle of a large backlog has, in about one run of four, left one
  telemetry partition assigned and "active" but never fetched again (no error logged; the
  consumer-state page ``/sledfleet/consumer/`` shows it). A restart clears it. The tests
  therefore let workers join before the backlog arrives; not fixed here.
* After a kill -9 and restart, Faust's fetch loop can hand the agent a telemetry frame
  far beyond the committed offset (holes of 30–530 frames per partition, seen in 6 of 10
  test runs). Faust then either records a "gap" and its offset commit steps
  over the never-delivered frames as if they had been handled (they were lost: ~114
  frames in an earlier run), or records nothing and never commits again (its committer
  refuses a missing head offset). The machine agent checks every delivered telemetry
  offset against the one expected (``stream.app.holes``), reads holes with a side
  consumer, handles them in order before the frame after the hole, and once outputs and
  state are acknowledged makes Faust's acked offsets exact (``FaustPort.mark_acked``).
* Web port 0 is refused (``create_app`` picks a free port for 0); ``datadir`` is created
  even with the memory store.
"""
