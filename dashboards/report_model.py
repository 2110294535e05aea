"""What the patient report says, computed from the patient dashboard's query results.

Pure: the rows come in (as returned by :func:`dashboards.queries.run`), facts come out —
lapses (gaps between sessions of at least ``LAPSE_DAYS``), the strength trend (weekly
e1RM and MCV at the most used reference load, first vs last week), adherence over the
period and the asymmetry picture. Nothing here touches the database or draws.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from dashboards import thresholds as t


@dataclass(frozen=True, slots=True)
class Lapse:
    start: datetime  # last session before the gap (or the period start)
    end: datetime  # next session (or the period end, when still lapsing)
    days: float
    ongoing: bool


@dataclass(frozen=True, slots=True)
class Trend:
    label: str
    unit: str
    first_week: datetime | None
    first: float | None
    last_week: datetime | None
    last: float | None

    @property
    def change_pct(self) -> float | None:
        if self.first is None or self.last is None or self.first == 0:
            return None
        return (self.last - self.first) / self.first * 100


@dataclass(frozen=True, slots=True)
class Facts:
    patient_id: str
    period_start: datetime
    period_end: datetime
    sessions: int
    prescribed: int
    attended: int
    adherence: float | None  # attended / prescribed over the period's weeks
    lapses: list[Lapse] = field(default_factory=list)
    e1rm: Trend | None = None
    mcv: Trend | None = None
    reference_load: str | None = None
    asi_latest: float | None = None
    asi_sessions_outside_band: int = 0
    vl_sets_above_prescription: int = 0
    vl_sets: int = 0

    def as_json(self) -> dict[str, Any]:
        def conv(v: Any) -> Any:
            if isinstance(v, datetime):
                return v.isoformat()
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, list):
                return [conv(x) for x in v]
            return v

        out: dict[str, Any] = conv(asdict(self))
        for name in ("e1rm", "mcv"):
            trend = getattr(self, name)
            if trend is not None:
                out[name]["change_pct"] = trend.change_pct
        return out


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


def lapses(
    session_times: Sequence[datetime],
    start: datetime,
    end: datetime,
    min_days: float = t.LAPSE_DAYS,
) -> list[Lapse]:
    """Gaps longer than ``min_days`` between consecutive sessions, and before the first /
    after the last one within the period (a weekly session on the same weekday is not a
    lapse; missing one is)."""
    times = sorted(session_times)
    points = [start, *times, end]
    out = []
    for a, b in itertools.pairwise(points):
        days = (b - a).total_seconds() / 86400
        if days > min_days:
            out.append(Lapse(a, b, days, ongoing=b == end))
    return out


def weekly_trend(
    rows: Sequence[Mapping[str, Any]], value: str, label: str, unit: str
) -> Trend | None:
    points = [(r["time"], _f(r[value])) for r in rows if r.get(value) is not None]
    if not points:
        return None
    points.sort(key=lambda p: p[0])
    return Trend(label, unit, points[0][0], points[0][1], points[-1][0], points[-1][1])


def reference_load(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The load trained in the most weeks (ties: the lighter one)."""
    weeks = Counter(str(r["metric"]) for r in rows)
    if not weeks:
        return None
    return sorted(weeks, key=lambda m: (-weeks[m], float(m.split()[0])))[0]


def derive(
    patient_id: str,
    start: datetime,
    end: datetime,
    results: Mapping[str, Sequence[Mapping[str, Any]]],
) -> Facts:
    """``results``: query name -> rows as dicts (patient_* queries)."""
    sessions = results["patient_sessions"]
    adherence = results["patient_adherence_weekly"]
    prescribed = sum(int(r["prescribed"] or 0) for r in adherence)
    attended = sum(int(r["attended"] or 0) for r in adherence)
    mcv_rows = results["patient_mcv_reference_load"]
    ref = reference_load(mcv_rows)
    asi = results["patient_asymmetry"]
    vl = results["patient_velocity_loss"]
    limit = t.VELOCITY_LOSS_PRESCRIBED_PCT
    return Facts(
        patient_id=patient_id,
        period_start=start,
        period_end=end,
        sessions=len(sessions),
        prescribed=prescribed,
        attended=attended,
        adherence=attended / prescribed if prescribed else None,
        lapses=lapses([r["time"] for r in sessions], start, end),
        e1rm=weekly_trend(results["patient_e1rm_weekly"], "e1rm_kg", "e1RM", "kg"),
        mcv=weekly_trend(
            [r for r in mcv_rows if r["metric"] == ref], "mcv_ms", f"MCV at {ref}", "m/s"
        )
        if ref
        else None,
        reference_load=ref,
        asi_latest=_f(asi[-1]["asi_pct"]) if asi else None,
        asi_sessions_outside_band=sum(
            1 for r in asi if abs(float(r["asi_pct"])) > t.ASYMMETRY_BAND_PCT
        ),
        vl_sets_above_prescription=sum(
            1 for r in vl if float(r["velocity_loss_pct"]) > float(r["prescribed_max_pct"] or limit)
        ),
        vl_sets=len(vl),
    )
