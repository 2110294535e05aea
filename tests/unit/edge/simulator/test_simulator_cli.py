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
