"""The rehearsal's CI tier: the whole deployment on namespace hosts (3 Kafka brokers, 2
bridges in one share group, 2 stream workers, a sink, Mosquitto, PostgreSQL, an edge host),
a small fleet segment per fault, each scored against the simulator's ground truth.

The full run (every fault, the scale-out pair, bigger segments) is ``services/rehearse
run``; this tier keeps to two faults: kill -9 of the Kafka broker leading the most
telemetry partitions, and kill -9 of a bridge (restarted 20 s later)."""

from __future__ import annotations

from typing import Any

import pytest

from rehearsal import netns
from rehearsal.deploy import Deployment, FleetSpec
from rehearsal.rehearse import run, table
from rehearsal.topology import Shape
from tests.integration.rehearsal_support import nothing_left, require_netns, unique_prefix

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require_netns()
    prefix = unique_prefix()
    dep = Deployment(
        prefix,
        Shape(brokers=3, bridges=2, workers=2, sinks=1),
        FleetSpec(clinics=1, machines_per_clinic=2, patients_per_machine=1, weeks=1, seed=11),
        logs=tmp_path_factory.mktemp("rehearsal") / "logs",
    )
    try:
        result = run(dep, ["kafka-leader", "bridge"], scale=False, segment_timeout_s=600.0)
    finally:
        netns.teardown(prefix)
    print(table(result))
    result["leftovers"] = nothing_left(prefix)
    return result


def test_teardown_leaves_nothing_and_no_role_dialled_loopback(rehearsal: dict[str, Any]) -> None:
    assert rehearsal["leftovers"] == {}
    assert rehearsal["loopback"]["ok"], rehearsal["loopback"]


def test_no_acknowledged_frame_is_lost(rehearsal: dict[str, Any]) -> None:
    for seg in rehearsal["segments"]:
        assert seg["frames_published"] > 0, seg
        assert seg["frames_lost"] == 0, seg
        assert seg["score"]["sessions"] == seg["score"]["truth_sessions"], seg


def test_every_rep_stored_exactly_once(rehearsal: dict[str, Any]) -> None:
    for seg in rehearsal["segments"]:
        sc = seg["score"]
        assert (sc["missing_reps"], sc["extra_reps"]) == (0, 0), seg
        assert sc["adherence_exact"] == sc["adherence_rows"], sc.get("adherence_diff")
        assert sc["passed"], seg
