"""``sledfleet demo``: a simulated multi-clinic fleet through the whole real pipeline.

- ``processes``: start, watch and stop the pipeline's role processes (bridge, stream
  worker, sink) as real subprocesses, each with its own log file and health check.
- ``pipeline``: the demo's stages (services, database, topics, roles, backfill, live,
  catch-up, summary, reports), each a small function.
- ``summary``: the fleet summary, computed by SQL on the database the sink wrote, and
  its comparison with the simulator's ground truth.
- ``cli``: the command line.
"""
