"""Two demos on one broker: every id that meets the broker or Kafka is their own."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dashboards.demo import pipeline
from edge.agent_settings import EdgeSettings
from edge.contract import ID_PATTERN
from edge.simulator import build_fleet


def _run(tmp_path: Path, **kw: object) -> pipeline.DemoRun:
    config = pipeline.DemoConfig(
        clinics=2, machines_per_clinic=2, patients_per_machine=1, weeks=1, out_dir=tmp_path, **kw
    )  # type: ignore[arg-type]
    return pipeline.new_run(config)


def _client_ids(run: pipeline.DemoRun, mode: str) -> set[str]:
    fleet = build_fleet(pipeline.fleet_config(run.config, mode, run.id_prefix))
    base = EdgeSettings()
    return {m.edge_settings(base).mqtt_client_id() for m in fleet.machines}


def test_two_runs_share_no_mqtt_client_id_clinic_or_topic(tmp_path: Path) -> None:
    a, b = _run(tmp_path / "a"), _run(tmp_path / "b")
    assert a.run_id != b.run_id
    assert a.kafka.topic_prefix != b.kafka.topic_prefix
    assert not set(a.clinic_ids) & set(b.clinic_ids)  # so the bridges' clinic filters too
    for mode in ("backfill", "live"):
        ids_a, ids_b = _client_ids(a, mode), _client_ids(b, mode)
        assert len(ids_a) == 4
        assert not ids_a & ids_b
    for clinic in a.clinic_ids:
        assert ID_PATTERN.match(clinic)


def test_the_fleet_uses_the_runs_clinic_ids(tmp_path: Path) -> None:
    run = _run(tmp_path)
    fleet = build_fleet(pipeline.fleet_config(run.config, "backfill", run.id_prefix))
    assert sorted({m.clinic_id for m in fleet.machines}) == run.clinic_ids
    assert all(m.machine_id.startswith(run.id_prefix) for m in fleet.machines)
    assert set(pipeline.build_fleet_zones(run)) == set(run.clinic_ids)


def test_a_given_prefix_is_kept(tmp_path: Path) -> None:
    run = _run(tmp_path, id_prefix="")
    assert run.clinic_ids == ["c01", "c02"]
    run = replace(run, id_prefix="x-")
    assert run.clinic_ids == ["x-c01", "x-c02"]
