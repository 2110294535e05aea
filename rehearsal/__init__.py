"""A multi-host rehearsal of SledFleet on one machine: every role on its own "host" (a Linux
network namespace with its own address and hostname), a 3-broker Kafka cluster, host-level
faults scored against the simulator's ground truth. Entry point: ``services/rehearse``."""
