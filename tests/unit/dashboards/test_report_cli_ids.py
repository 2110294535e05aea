"""``sledfleet report patient`` checks its id before it reaches SQL or a file name."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.cli import main


@pytest.mark.parametrize("hostile", ["../../etc/passwd", "p1'; DROP TABLE x; --", "a b", "<p>"])
def test_hostile_patient_ids_are_refused(
    hostile: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["report", "patient", hostile, "--out", str(tmp_path), "--dsn", "postgresql://x"])
    assert code == 2
    assert "bad_id" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
