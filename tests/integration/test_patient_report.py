"""`sledfleet report patient` for a simulated patient with 12 weeks of history.

The patient (tests/integration/dashboards_seed.py) gets stronger every trained week and
misses three whole weeks in the middle. The report is rendered by the CLI logged in as the
clinic's database role (what a clinic without Grafana would run); its numbers are checked
against the database's base tables, and its strength trend and lapse against the seed.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from storage.tenants import add_clinic, clinic_role_name
from tests.integration.dashboards_seed import (
    LAPSE_WEEKS,
    REFERENCE_LOAD_KG,
    SeedFleet,
    l0_kg,
    seed,
    trained_weeks,
    true_e1rm,
)
from tests.integration.storage_support import REPO, migrated_database

pytestmark = pytest.mark.integration

WEEKS = 12


@dataclass(frozen=True)
class Rendered:
    fleet: SeedFleet
    owner_dsn: str
    clinic_dsn: str
    html: str
    data: dict[str, Any]
    start: datetime
    end: datetime


@pytest.fixture(scope="module")
def rendered(admin_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rendered]:
    tag = uuid.uuid4().hex[:6]
    fleet = SeedFleet(clinics=(f"r{tag}a", f"r{tag}b"))
    end = fleet.now
    out = tmp_path_factory.mktemp("report")
    try:
        with migrated_database(admin_dsn) as db:
            with psycopg.connect(db.owner, autocommit=True) as conn:
                seed(conn, fleet)
            password = uuid.uuid4().hex
            with psycopg.connect(db.admin, autocommit=True) as conn:
                role, _ = add_clinic(conn, fleet.clinics[0], password=password)
            clinic_dsn = make_conninfo(db.owner, user=role, password=password)
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "edge.cli",
                    "report",
                    "patient",
                    fleet.report_patient,
                    "--out",
                    str(out),
                    "--weeks",
                    str(WEEKS),
                    "--end",
                    end.isoformat(),
                    "--dsn",
                    clinic_dsn,
                ],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr
            path = Path(proc.stdout.strip().splitlines()[-1])
            assert path == out / f"patient-{fleet.report_patient}.html"
            html = path.read_text()
            m = re.search(
                r'<script type="application/json" id="report-data">\n(.*)\n</script>', html
            )
            assert m
            yield Rendered(
                fleet,
                db.owner,
                clinic_dsn,
                html,
                json.loads(m.group(1)),
                end - timedelta(weeks=WEEKS),
                end,
            )
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP ROLE IF EXISTS {}").format(
                    sql.Identifier(clinic_role_name(fleet.clinics[0]))
                )
            )


def _q(dsn: str, text: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(text, params).fetchall()  # type: ignore[call-overload, no-any-return]


def test_report_counts_match_the_database(rendered: Rendered) -> None:
    r, pid = rendered, rendered.fleet.report_patient
    ((sessions,),) = _q(
        r.owner_dsn,
        "SELECT count(*) FROM sledfleet.sessions WHERE patient_id = %s AND ts BETWEEN %s AND %s",
        pid,
        r.start,
        r.end,
    )
    assert r.data["sessions"] == sessions > 0
    ((prescribed, attended),) = _q(
        r.owner_dsn,
        "SELECT sum(prescribed), sum(attended) FROM sledfleet.adherence_weekly "
        "WHERE patient_id = %s AND week_start BETWEEN %s::date AND %s::date",
        pid,
        r.start,
        r.end,
    )
    assert (r.data["prescribed"], r.data["attended"]) == (prescribed, attended)
    assert f'id="sessions">{sessions}<' in r.html


def test_report_shows_the_lapse_the_simulation_put_in(rendered: Rendered) -> None:
    r, pid = rendered, rendered.fleet.report_patient
    gaps = _q(
        r.owner_dsn,
        """
        SELECT prev, ts, extract(epoch FROM ts - prev) / 86400
        FROM (SELECT ts, lag(ts) OVER (ORDER BY ts) AS prev
              FROM sledfleet.sessions WHERE patient_id = %s) s
        WHERE ts - prev > INTERVAL '7 days'""",
        pid,
    )
    assert len(gaps) == 1
    prev, nxt, days = gaps[0]
    (lapse,) = r.data["lapses"]
    assert datetime.fromisoformat(lapse["start"]) == prev
    assert datetime.fromisoformat(lapse["end"]) == nxt
    assert lapse["days"] == pytest.approx(float(days))
    # the seed skipped LAPSE_WEEKS entirely: the gap covers them (> 3 weeks)
    lapse_monday = r.fleet.start + timedelta(weeks=LAPSE_WEEKS[0])
    assert prev.date() < lapse_monday
    assert lapse["days"] >= 7 * len(LAPSE_WEEKS)
    assert f"<td>{prev:%Y-%m-%d}</td><td>{nxt:%Y-%m-%d}</td>" in r.html


def test_report_strength_trend_matches_database_and_truth(rendered: Rendered) -> None:
    r, pid = rendered, rendered.fleet.report_patient
    weekly = _q(
        r.owner_dsn,
        """
        SELECT date_bin('7 days', ts, '2000-01-03 00:00:00+00'), avg(e1rm_kg)
        FROM sledfleet.sessions WHERE patient_id = %s AND ts BETWEEN %s AND %s
        GROUP BY 1 ORDER BY 1""",
        pid,
        r.start,
        r.end,
    )
    e1rm = r.data["e1rm"]
    assert e1rm["first"] == pytest.approx(weekly[0][1])
    assert e1rm["last"] == pytest.approx(weekly[-1][1])
    assert datetime.fromisoformat(e1rm["first_week"]) == weekly[0][0]
    c = r.fleet.clinics[0]
    trained = trained_weeks(r.fleet, c, 0)  # L0 grows once per trained week before
    assert not set(trained) & set(LAPSE_WEEKS)
    assert e1rm["first"] == pytest.approx(true_e1rm(l0_kg(0)))
    assert e1rm["last"] == pytest.approx(true_e1rm(l0_kg(len(trained) - 1)))
    assert e1rm["change_pct"] > 10
    ref = _q(
        r.owner_dsn,
        """
        SELECT date_bin('7 days', ts, '2000-01-03 00:00:00+00'), avg(mcv_ms)
        FROM sledfleet.reps WHERE patient_id = %s AND valid AND load_kg = %s
          AND ts BETWEEN %s AND %s GROUP BY 1 ORDER BY 1""",
        pid,
        REFERENCE_LOAD_KG,
        r.start,
        r.end,
    )
    assert r.data["reference_load"] == f"{REFERENCE_LOAD_KG:.1f} kg"
    assert r.data["mcv"]["first"] == pytest.approx(ref[0][1])
    assert r.data["mcv"]["last"] == pytest.approx(ref[-1][1])
    assert r.data["mcv"]["last"] > r.data["mcv"]["first"]
    assert 'id="trend-e1rm"' in r.html
    assert f"{e1rm['change_pct']:+.1f} %" in r.html


def test_report_is_self_contained_with_readable_charts(rendered: Rendered) -> None:
    images = re.findall(
        r'<img id="chart-(\w+)"[^>]*src="data:image/png;base64,([^"]+)"', rendered.html
    )
    assert {name for name, _ in images} == {
        "strength",
        "calendar",
        "adherence",
        "asymmetry",
        "velocity_loss",
        "outcomes",
    }
    for _, data in images:
        png = base64.b64decode(data)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert width >= 800
        assert height >= 250
    assert "http://" not in rendered.html
    assert "https://" not in rendered.html


def test_another_clinics_patient_is_invisible_to_this_clinic(
    rendered: Rendered, tmp_path: Path
) -> None:
    other = rendered.fleet.patient_id(rendered.fleet.clinics[1], 0)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "report",
            "patient",
            other,
            "--out",
            str(tmp_path),
            "--dsn",
            rendered.clinic_dsn,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no data for patient" in proc.stdout
    html = (tmp_path / f"patient-{other}.html").read_text()
    assert 'id="sessions">0<' in html
