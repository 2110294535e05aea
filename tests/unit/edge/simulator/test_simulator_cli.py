"""``sledfleet simulate`` writes the ground truth and a summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cli import main
from edge.simulator.truth import TRUTH_FILES


def test_simulate_writes_ground_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "truth"
    code = main(
        ["simulate", "--clinics", "1", "--machines-per-clinic", "2", "--patients-per-machine",
         "2", "--days", "7", "--seed", "5", "--start-date", "2026-01-05", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["machines"] == 2
    assert summary["patients"] == 4
    assert summary["sessions"] > 0
    for kind in TRUTH_FILES:
        lines = (out / f"{kind}.jsonl").read_text().splitlines()
        assert lines, kind
        rows = [json.loads(line) for line in lines]
        if kind == "sessions":
            assert len(rows) == summary["sessions"]
            assert all(r["date"] >= "2026-01-05" for r in rows)
        if kind == "prescriptions":
            assert {r["kind"] for r in rows} == {"prescription"}
            assert all(r["start_date"] == "2026-01-05" for r in rows)


def test_simulate_takes_the_disorder_knobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "truth"
    code = main(
        ["simulate", "--clinics", "2", "--machines-per-clinic", "2", "--patients-per-machine",
         "2", "--days", "3", "--seed", "5", "--start-date", "2026-03-06", "--out", str(out),
         "--time-zones", "Australia/Sydney,America/Los_Angeles", "--rates-hz", "50,200",
         "--frame-sizes", "20,100", "--clock-offset-max-h", "2", "--clock-drift-max-ppm", "50",
         "--clock-offset-reported", "0", "--clinic-weekdays", "0,1,2,3,4,5,6",
         "--late-session-prob", "0.5", "--lockstep-s", "10", "--network-delay-max-s", "120",
         "--reconnect-prob", "1", "--reconnect-backlog-s", "30,90", "--offline-fraction", "0.5",
         "--offline-days", "1,2"]
    )  # fmt: skip
    assert code == 0
    machines = [json.loads(line) for line in (out / "machines.jsonl").read_text().splitlines()]
    assert [m["time_zone"] for m in machines] == ["Australia/Sydney"] * 2 + [
        "America/Los_Angeles"
    ] * 2
    assert [(m["rate_hz"], m["frame_samples"]) for m in machines] == [(50.0, 20), (200.0, 100)] * 2
    assert all(abs(m["clock_offset_ms"]) <= 2 * 3_600_000 for m in machines)
    assert any(abs(m["clock_offset_ms"]) > 60_000 for m in machines)
    assert not any(m["clock_offset_reported"] for m in machines)
    assert sum(m["reconnect_at_ns"] is not None for m in machines) == 2
    assert all(m["delay_s"] <= 120 for m in machines)
    sessions = [json.loads(line) for line in (out / "sessions.jsonl").read_text().splitlines()]
    assert {s["time_zone"] for s in sessions} <= {"Australia/Sydney", "America/Los_Angeles"}
