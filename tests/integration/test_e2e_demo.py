"""End to end: ``sledfleet demo`` on real Mosquitto, Kafka and PostgreSQL.

The demo runs as a subprocess (its own bridge, stream worker and sink subprocesses, real
edge agents). Then, independently of the demo's own code paths:
- every rep the simulator generated is in the database exactly once, with metrics within
  the stream issue's tolerances;
- the summary the demo printed (and wrote to summary.json) equals direct queries;
- p50/p99 latency from rep end to committed row is printed (target p99 <= 2 s).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dashboards.demo.pipeline import drop_database
from edge.settings import KafkaSettings, MqttSettings
from tests.integration.conftest import dsn_with

DEMO_ARGS = [
    "--clinics", "2",
    "--machines-per-clinic", "2",
    "--patients-per-machine", "2",
    "--weeks", "3",
    "--live-machines", "2",
    "--live-s", "75",
    "--seed", "11",
]  # fmt: skip
DEMO_TIMEOUT_S = 900
pytestmark = [pytest.mark.slow, pytest.mark.timeout(DEMO_TIMEOUT_S + 120)]
"""The demo subprocess has its own deadline; pytest's default 300 s is too short for it on
a loaded machine."""


@pytest.fixture
def demo_result(
    tmp_path: Path,
    unique: str,
    admin_dsn: str,
    mqtt_settings: MqttSettings,
    kafka_settings: KafkaSettings,
) -> Any:
    database = f"sledfleet_e2e_{unique}"
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "edge.cli", "demo", "--no-services", *DEMO_ARGS]
    cmd += ["--database", database, "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=DEMO_TIMEOUT_S, check=False)
    print(proc.stdout[-6000:])
    summary = out / "summary.json"
    assert summary.exists(), f"demo wrote no summary (rc {proc.returncode}):\n{proc.stderr[-4000:]}"
    owner_dsn = dsn_with(admin_dsn, dbname=database)
    try:
        yield proc, json.loads(summary.read_text()), owner_dsn
    finally:
        drop_database(admin_dsn, database)  # and the run's clinic roles


def test_demo_every_rep_once_within_tolerance_and_summary_matches_database(
    demo_result: Any,
) -> None:
    proc, result, dsn = demo_result
    score = result["score"]
    # every generated rep found, none invented, all metrics within tolerance
    assert score["truth_reps"] > 100
    assert score["missing_reps"] == 0, score
    assert score["extra_reps"] == 0, score
    assert score["sets_exact_fraction"] >= 0.99, score
    assert score["mcv_p95"] <= 0.02, score
    assert score["rom_p95"] <= 5.0, score
    assert score["asi_p95"] <= 2.0, score
    assert score["adherence_exact"] == score["adherence_rows"] > 0, score
    assert proc.returncode == 0, proc.stderr[-4000:]

    with psycopg.connect(dsn, autocommit=True) as conn:
        # exactly once: no natural key twice
        dup = conn.execute(
            "SELECT count(*) - count(DISTINCT (machine_id, session_id, set_no, rep_no))"
            " FROM sledfleet.reps"
        ).fetchone()
        assert dup == (0,)
        # the printed summary equals direct queries (reps: the live session may still have
        # an open set when the demo stops, so they are counted from the reps themselves)
        totals = result["summary"]["totals"]
        direct = conn.execute(
            """
            SELECT (SELECT count(*) FROM sledfleet.v_fleet_machines),
                   (SELECT count(*) FROM sledfleet.v_sessions),
                   (SELECT count(*) FROM sledfleet.reps WHERE valid),
                   (SELECT count(*) FROM sledfleet.reps WHERE NOT valid),
                   (SELECT count(*) FROM sledfleet.v_alerts_open)
            """
        ).fetchone()
        assert direct is not None
        assert (
            totals["machines"],
            totals["sessions"],
            totals["reps"],
            totals["partial_reps"],
            totals["open_alerts"],
        ) == tuple(int(x) for x in direct)
        for clinic in result["summary"]["clinics"]:
            row = conn.execute(
                "SELECT count(*) FROM sledfleet.v_sessions WHERE clinic_id = %s",
                (clinic["clinic_id"],),
            ).fetchone()
            assert row == (clinic["sessions"],)
        lat = conn.execute(
            """
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY l),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY l), count(*)
            FROM (SELECT extract(epoch FROM stored_at - sledfleet.ns_to_ts(end_ns)) AS l
                  FROM sledfleet.reps WHERE end_ns >= %s) x
            """,
            (result["live_since_ns"],),
        ).fetchone()
    assert lat is not None
    assert lat[2] > 0, "no live reps reached the database"
    print(
        f"\nend-to-end latency rep end -> row: p50 {lat[0]:.2f} s, p99 {lat[1]:.2f} s (n={lat[2]})"
    )
    printed = result["summary"]["latency"]
    assert printed["n"] == lat[2]
    assert abs(printed["p99"] - float(lat[1])) < 1e-6
    assert str(totals["sessions"]) in proc.stdout
    # the reports exist and name their patient
    assert result["reports"], "no patient report written"
    for path in result["reports"]:
        html = Path(path).read_text()
        assert "<img" in html
        assert Path(path).stem.removeprefix("patient-") in html
