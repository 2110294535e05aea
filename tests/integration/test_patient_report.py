"""`sledfleet report clinic|patient` on a seeded fleet whose truth is known, rendered to
HTML, A4 PDF (headless Chromium) and PNG pages (pdftoppm), as the clinic's database role.

The seed (tests/integration/dashboards_seed.py): the report patient trains twice a week,
misses three whole weeks in the middle, gets stronger every trained week, has a left leg
weaker than the right (ASI 16 % falling to 6 %), completes exactly one of its two weekly
sessions as prescribed (the other ends with a set over the velocity-loss limit), records
four effort/symptom notes and four outcome tests three times; its clinic keeps its calendar
in Europe/Berlin. Each number the report prints is checked against the seed or the base
tables, and the report against itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from storage.tenants import add_clinic, clinic_role_name
from tests.integration.dashboards_seed import (
    LAPSE_WEEKS,
    NOTES,
    REFERENCE_LOAD_KG,
    TIME_ZONE,
    SeedFleet,
    l0_kg,
    seed,
    session_starts,
    trained_weeks,
    true_e1rm,
)
from tests.integration.storage_support import REPO, fresh_database, migrated_database

pytestmark = pytest.mark.integration

WEEKS = 12


@dataclass(frozen=True)
class Rendered:
    fleet: SeedFleet
    owner_dsn: str
    clinic_dsn: str
    out: Path
    html: str
    data: dict[str, Any]
    end: datetime
    stdout: str


def sledfleet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", "report", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
        env={**os.environ, **(env or {})},
    )


def report_data(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="report-data">\n(.*)\n</script>', html)
    assert m
    return json.loads(m.group(1))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def rendered(admin_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rendered]:
    if shutil.which("chromium") is None or shutil.which("pdftoppm") is None:
        pytest.fail("chromium and poppler-utils are needed: run services/bootstrap")
    tag = uuid.uuid4().hex[:6]
    fleet = SeedFleet(clinics=(f"r{tag}a", f"r{tag}b"))
    end = fleet.now
    out = tmp_path_factory.mktemp("reports")
    try:
        with migrated_database(admin_dsn) as db:
            with psycopg.connect(db.owner, autocommit=True) as conn:
                seed(conn, fleet)
            password = uuid.uuid4().hex
            with psycopg.connect(db.admin, autocommit=True) as conn:
                role, _ = add_clinic(conn, fleet.clinics[0], password=password)
            clinic_dsn = make_conninfo(db.owner, user=role, password=password)
            proc = sledfleet(
                "clinic", fleet.clinics[0], "--out", str(out), "--weeks", str(WEEKS),
                "--end", end.isoformat(), "--dsn", clinic_dsn,
            )  # fmt: skip
            assert proc.returncode == 0, proc.stderr
            html = (out / fleet.clinics[0] / f"patient-{fleet.report_patient}.html").read_text()
            yield Rendered(
                fleet, db.owner, clinic_dsn, out / fleet.clinics[0], html, report_data(html),
                end, proc.stdout,
            )  # fmt: skip
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


def _seeded_sessions(r: Rendered) -> list[tuple[int, int]]:
    """(week, k) of the report patient's sessions: k = 1 is the week's second session."""
    c = r.fleet.clinics[0]
    return [(w, k) for w in range(12) for k, _ in enumerate(session_starts(r.fleet, c, 0, w))]


def test_clinic_command_writes_every_patient_html_and_pdf_and_an_index(r: Rendered) -> None:
    index = (r.out / "index.html").read_text()
    for p in range(r.fleet.patients_per_clinic):
        pid = r.fleet.patient_id(r.fleet.clinics[0], p)
        assert (r.out / f"patient-{pid}.html").exists()
        pdf = r.out / f"patient-{pid}.pdf"
        assert pdf.read_bytes().startswith(b"%PDF")
        assert f'href="patient-{pid}.pdf"' in index
    assert r.fleet.patient_id(r.fleet.clinics[1], 0) not in index  # another clinic's


def test_period_starts_at_care_and_the_only_lapse_is_the_seeded_one(r: Rendered) -> None:
    berlin = ZoneInfo(TIME_ZONE)
    care = datetime(r.fleet.start.year, r.fleet.start.month, r.fleet.start.day, tzinfo=berlin)
    assert datetime.fromisoformat(r.data["period_start"]) == care  # not 12 weeks before the end
    assert r.data["time_zone"] == TIME_ZONE
    (lapse,) = r.data["lapses"]
    gaps = _q(
        r.owner_dsn,
        """SELECT prev, ts FROM (SELECT ts, lag(ts) OVER (ORDER BY ts) AS prev
           FROM sledfleet.sessions WHERE patient_id = %s) s WHERE ts - prev > INTERVAL '7 days'""",
        r.fleet.report_patient,
    )
    assert [(datetime.fromisoformat(lapse["start"]), datetime.fromisoformat(lapse["end"]))] == gaps
    assert lapse["start_kind"] == lapse["end_kind"] == "session"
    assert not lapse["ongoing"]
    assert lapse["days"] >= 7 * len(LAPSE_WEEKS)
    prev = gaps[0][0].astimezone(berlin)
    assert f"{prev:%Y-%m-%d} (session)" in r.html
    other = r.fleet.patient_id(r.fleet.clinics[0], 1)
    assert 'id="lapses-none"' in (r.out / f"patient-{other}.html").read_text()


def test_summary_numbers_match_the_seed(r: Rendered) -> None:
    sessions = _seeded_sessions(r)
    d = r.data
    assert d["sessions"] == len(sessions)
    assert d["attended"] == len(sessions)
    trained = trained_weeks(r.fleet, r.fleet.clinics[0], 0)
    assert d["prescribed"] == 2 * WEEKS
    # the week's second session ends with a set over the limit: not as prescribed
    assert d["completed"] == sum(1 for _, k in sessions if k == 0) == len(trained)
    assert d["sessions_not_as_prescribed"] == sum(1 for _, k in sessions if k == 1)
    assert f'id="sessions">{len(sessions)}<' in r.html
    adherence, compliance = d["attended"] / d["prescribed"], d["completed"] / d["prescribed"]
    assert f"{d['attended']} / {d['prescribed']} = {adherence:.0%}" in r.html
    assert f"{d['completed']} / {d['prescribed']} = {compliance:.0%}" in r.html
    assert "no: velocity loss above 20 % in 1 set(s) (up to 24 %)" in r.html
    assert ">yes<" in r.html
    assert ">True<" not in r.html
    assert ">False<" not in r.html


def test_strength_trend_at_the_prescribed_load_matches_database_and_truth(r: Rendered) -> None:
    pid = r.fleet.report_patient
    trained = trained_weeks(r.fleet, r.fleet.clinics[0], 0)
    e1rm = r.data["e1rm"]
    assert e1rm["first"] == pytest.approx(true_e1rm(l0_kg(0)))
    assert e1rm["last"] == pytest.approx(true_e1rm(l0_kg(len(trained) - 1)))
    assert f"{e1rm['change_pct']:+.1f} %" in r.html
    ref = _q(
        r.owner_dsn,
        """SELECT date_bin('7 days', ts, '2000-01-03 00:00:00+00'), avg(mcv_ms)
           FROM sledfleet.reps WHERE patient_id = %s AND valid AND load_kg = %s
           GROUP BY 1 ORDER BY 1""",
        pid,
        REFERENCE_LOAD_KG,
    )
    assert r.data["reference_load"] == f"{REFERENCE_LOAD_KG:.1f} kg"  # the prescribed load
    assert r.data["mcv"]["first"] == pytest.approx(ref[0][1])
    assert r.data["mcv"]["last"] == pytest.approx(ref[-1][1])
    assert r.data["mcv"]["last"] > r.data["mcv"]["first"]


def test_legs_notes_and_outcomes_are_shown(r: Rendered) -> None:
    assert r.data["weaker_side_latest"] == "left"
    assert "(weaker side: left)" in r.html
    assert r.data["notes"] == len(NOTES)
    assert r.data["relapse_notes"] == 1
    assert "new numbness in the left foot for 2 days" in r.html
    assert "suspected: review" in r.html
    # MSWS-12 40 -> 32 (8 points: meaningful); T25FW 9 -> 8 s (-11 %: not 20 %)
    assert re.search(r"MSWS-12</td>.*?meaningful improvement", r.html, re.S)
    assert re.search(r"T25FW \(s\)</td>.*?within the meaningful-change threshold", r.html, re.S)


ALL_CHARTS = {"calendar", "adherence", "strength", "load", "sides", "effort", "velocity_loss",
              "outcomes"}  # fmt: skip


def test_nothing_empty_and_nothing_contradicts(r: Rendered) -> None:
    charts = set(re.findall(r'<img id="chart-(\w+)"', r.html))
    assert charts == ALL_CHARTS
    assert "empty-chart" not in r.html.split("<body>")[1]
    assert 'id="problems"' not in r.html
    # the alert reads in the summary's words and units
    assert "asymmetry 15.1 % (band ±10 %)" in r.html
    assert "http://" not in r.html
    assert "https://" not in r.html


def test_every_patient_of_the_clinic_report_is_clean_and_agrees_with_the_index(
    r: Rendered,
) -> None:
    """Not only the report patient: every report of the clinic has no empty chart, no
    contradiction and no phantom lapse (only the seeded lapse patient has one), counts a
    session over the velocity-loss limit as not completed (the seed: one of the two weekly
    sessions), and the clinic index states the same compliance as each patient's report."""
    c = r.fleet.clinics[0]
    index = (r.out / "index.html").read_text()
    for p in range(r.fleet.patients_per_clinic):
        pid = r.fleet.patient_id(c, p)
        html = (r.out / f"patient-{pid}.html").read_text()
        d = report_data(html)
        charts = set(re.findall(r'<img id="chart-(\w+)"', html))
        placeholders = dict(
            re.findall(r'<p class="empty-chart" id="chart-(\w+)-empty">(.*?)</p>', html)
        )
        assert charts | set(placeholders) == ALL_CHARTS, pid
        assert not charts & set(placeholders), pid
        # only the notes chart may be a sentence (only the report patient has notes), and
        # the sentence says how to record them
        assert set(placeholders) <= {"effort"}, pid
        assert all("sledfleet note add" in why for why in placeholders.values()), pid
        assert 'id="problems"' not in html, pid
        assert datetime.fromisoformat(d["period_start"]) >= datetime.fromisoformat(d["care_start"])
        if r.fleet.lapses(c, p):
            assert len(d["lapses"]) == 1
        else:
            assert d["lapses"] == [], pid
            assert 'id="lapses-none"' in html
        starts = [session_starts(r.fleet, c, p, w) for w in range(WEEKS)]
        assert d["completed"] == sum(1 for s in starts if s), pid  # the first of each week
        assert d["sessions_not_as_prescribed"] == sum(len(s) - 1 for s in starts if s), pid
        (row,) = re.findall(rf"<tr><td>{re.escape(pid)}</td>(.*?)</tr>", index)
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
        assert cells[2] == f"{d['completed'] / d['prescribed']:.0%}", pid  # compliance column


def test_pdf_pages_render_and_carry_the_numbers(r: Rendered, tmp_path: Path) -> None:
    pdf = r.out / f"patient-{r.fleet.report_patient}.pdf"
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(pdf), str(tmp_path / "page")],
                   check=True, timeout=120)  # fmt: skip
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 3
    for page in pages:
        png = page.read_bytes()
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert height / width == pytest.approx(297 / 210, rel=0.02)  # A4 portrait
        assert len(png) > 5_000  # not a blank page
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True, timeout=120).stdout  # fmt: skip
    d = r.data
    assert "Europe/Berlin" in text
    assert f"{d['attended']} / {d['prescribed']} = {d['attended'] / d['prescribed']:.0%}" in text
    assert f"{d['completed']} / {d['prescribed']}" in text
    assert f"{d['e1rm']['change_pct']:+.1f} %" in text


def test_unknown_or_invisible_patient_is_refused(r: Rendered, tmp_path: Path) -> None:
    for pid in ("no-such-patient", r.fleet.patient_id(r.fleet.clinics[1], 0)):
        proc = sledfleet("patient", pid, "--out", str(tmp_path), "--dsn", r.clinic_dsn, "--no-pdf")
        assert proc.returncode == 2
        assert f"no patient {pid!r}" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert list(tmp_path.iterdir()) == []
    proc = sledfleet("clinic", "no-such-clinic", "--out", str(tmp_path), "--dsn", r.clinic_dsn)
    assert proc.returncode == 2
    assert "no clinic 'no-such-clinic'" in proc.stderr


def test_missing_or_unmigrated_database_is_one_clear_line(admin_dsn: str, tmp_path: Path) -> None:
    with fresh_database(admin_dsn, prefix="rp") as db:
        proc = sledfleet("patient", "p1", "--dsn", db.owner, "--out", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "not migrated" in proc.stderr
    assert "sledfleet db migrate" in proc.stderr
    unreachable = make_conninfo(admin_dsn, host="127.0.0.1", port="1")
    proc = sledfleet("patient", "p1", "--dsn", unreachable, "--out", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.startswith("sledfleet report: cannot reach the database at 127.0.0.1:1/")
    assert proc.stderr.count("\n") == 1
    assert ":postgres@" not in proc.stderr  # no credentials
    assert "password" not in proc.stderr


def test_default_output_is_the_report_dir_not_the_working_tree(r: Rendered, tmp_path: Path) -> None:
    proc = sledfleet(
        "patient", r.fleet.report_patient, "--dsn", r.clinic_dsn, "--no-pdf", "--end",
        r.end.isoformat(), env={"SLEDFLEET_REPORT_DIR": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    written = tmp_path / f"patient-{r.fleet.report_patient}.html"
    assert proc.stdout.strip() == str(written)
    assert report_data(written.read_text())["sessions"] == r.data["sessions"]
    assert not list(REPO.glob("patient-*.html"))


@pytest.fixture
def r(rendered: Rendered) -> Rendered:
    return rendered


def test_a_note_recorded_by_the_cli_reaches_the_report(r: Rendered, tmp_path: Path) -> None:
    pid = r.fleet.patient_id(r.fleet.clinics[0], 2)
    at = (r.end - timedelta(days=1)).isoformat()
    proc = subprocess.run(
        [sys.executable, "-m", "edge.cli", "note", "--dsn", r.owner_dsn, "add", "--patient", pid,
         "--rpe", "6", "--fatigue", "8", "--symptoms", "dizzy after the session", "--at", at],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "edge.cli", "note", "--dsn", r.owner_dsn, "add", "--patient", pid,
         "--rpe", "14"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "rpe" in bad.stderr
    proc = sledfleet("patient", pid, "--dsn", r.clinic_dsn, "--no-pdf", "--out", str(tmp_path),
                     "--end", r.end.isoformat())  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / f"patient-{pid}.html").read_text()
    assert "dizzy after the session" in html
    assert report_data(html)["notes"] == 1
