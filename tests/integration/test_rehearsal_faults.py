"""The rehearsal's CI tier: the whole deployment on namespace hosts (3 Kafka brokers, 2
bridges in one share group, 2 stream workers, a sink, Mosquitto, PostgreSQL, an edge host),
a small fleet segment per fault, each scored against the simulator's ground truth.

The full run (every fault, the scale-out pair, bigger segments) is ``services/rehearse
run``; this tier keeps to the faults that must never lose data today: kill -9 of the Kafka
broker leading the most telemetry partitions, and kill -9 of a bridge."""

from __future__ import annotations

from pathlib import Path

import pytest

from rehearsal import netns
from rehearsal.deploy import Deployment, FleetSpec
from rehearsal.rehearse import run, table
from rehearsal.topology import Shape
from tests.integration.rehearsal_support import nothing_left, require_netns, unique_prefix

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1500)]


def test_faults_lose_nothing_and_nothing_dials_loopback(tmp_path: Path) -> None:
    require_netns()
    prefix = unique_prefix()
    dep = Deployment(
        prefix,
        Shape(brokers=3, bridges=2, workers=2, sinks=1),
        FleetSpec(clinics=1, machines_per_clinic=2, patients_per_machine=1, weeks=1, seed=11),
        logs=tmp_path / "logs",
    )
    try:
        result = run(dep, ["kafka-leader", "bridge"], scale=False, segment_timeout_s=600.0)
    finally:
        netns.teardown(prefix)
    print(table(result))
    assert nothing_left(prefix) == {}
    assert result["loopback"]["ok"], result["loopback"]
    for seg in result["segments"]:
        sc = seg["score"]
        assert sc["truth_reps"] > 0
        assert (sc["missing_reps"], sc["extra_reps"]) == (0, 0), seg
        assert sc["sessions"] == sc["truth_sessions"], seg
        assert sc["adherence_exact"] == sc["adherence_rows"], seg
        assert sc["passed"], seg
