"""The Faust application: a thin adapter between Kafka and the pure core in ``stream.core``.

``create_app`` builds the app (topics, tables, agents, timers); ``sledfleet stream worker``
runs it. All computation lives in ``stream.core``; this package only decodes input,
keeps per-machine and per-patient state in changelog-backed tables and routes the
core's records to their output topics.
"""
