"""PNG charts of the patient report (matplotlib, Agg backend: no display needed).

Each function takes the rows of one patient-dashboard query (dicts) and returns PNG bytes,
or ``None`` when there is nothing to draw: the report then prints :data:`EMPTY` (why the
chart is missing and how to record the data) instead of an empty axis. Times are drawn in
the clinic's time zone (``tz``); thresholds come from :mod:`dashboards.thresholds`, the same
ones the panels colour by.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from dashboards import empty
from dashboards import thresholds as t
from dashboards.report_model import Lapse

Rows = Sequence[Mapping[str, Any]]
WIDTH_IN, HEIGHT_IN, DPI = 8.0, 3.0, 110
BLUE, GREEN, ORANGE, RED, GREY = "#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9e9e9e"

EMPTY: Final = empty.EMPTY


def local(v: datetime, tz: str) -> datetime:
    """A timestamptz as naive clinic-local time (what matplotlib draws)."""
    return v.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def _fig(height: float = HEIGHT_IN) -> tuple[Figure, Any]:
    fig, ax = plt.subplots(figsize=(WIDTH_IN, height))
    return fig, ax


def _dates(ax: Any, start: datetime, end: datetime) -> None:
    loc = mdates.AutoDateLocator(minticks=3, maxticks=8)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))  # type: ignore[no-untyped-call]
    ax.set_xlim(start, end)
    ax.tick_params(labelsize=8)


def _shade_lapses(ax: Any, lapses: Sequence[Lapse], tz: str) -> None:
    for i, lapse in enumerate(lapses):
        ax.axvspan(
            local(lapse.start, tz),
            local(lapse.end, tz),
            color=RED,
            alpha=0.08,
            label=f"lapse (no session for over {t.LAPSE_DAYS:g} days)" if i == 0 else None,
        )


def _legend(ax: Any, **kwargs: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, **kwargs)


def calendar(rows: Rows, start: datetime, end: datetime, tz: str) -> bytes | None:
    """Weeks (columns) × weekdays (rows) of the clinic's calendar; colour = sessions."""
    if not rows:
        return None
    s, e = local(start, tz), local(end, tz)
    monday = (s - timedelta(days=s.weekday())).date()
    weeks = (e.date() - monday).days // 7 + 1
    grid = [[0.0] * weeks for _ in range(7)]
    done = [[0.0] * weeks for _ in range(7)]
    for r in rows:
        d = local(r["time"], tz).date()
        w = (d - monday).days // 7
        if 0 <= w < weeks:
            grid[d.weekday()][w] += float(r["sessions"])
            done[d.weekday()][w] += float(r["as_prescribed"])
    fig, ax = _fig(2.4)
    ax.imshow(grid, aspect="auto", cmap="Greens", vmin=0, vmax=max(2.0, *map(max, grid)))
    for w in range(weeks):
        for dow in range(7):
            if grid[dow][w]:
                mark = "✓" if done[dow][w] >= grid[dow][w] else ""
                ax.text(w, dow, f"{grid[dow][w]:g}{mark}", ha="center", va="center", fontsize=8)
    ax.set_yticks(range(7), ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], fontsize=8)
    step = max(1, (weeks + 9) // 10)
    labels = [(monday + timedelta(weeks=w)).strftime("%d %b") for w in range(weeks)]
    ax.set_xticks(range(0, weeks, step), labels[::step], fontsize=8)
    ax.set_title(
        f"Sessions per day ({tz}; ✓ = all that day as prescribed), weeks from Monday",
        fontsize=10,
    )
    return _png(fig)


def adherence(rows: Rows, tz: str) -> bytes | None:
    if not rows:
        return None
    fig, ax = _fig(3.2)
    ax.grid(True, alpha=0.3)
    x = [local(r["time"], tz) for r in rows]
    ax.bar(x, [r["attended"] for r in rows], width=5, color=BLUE, label="attended")
    ax.bar(x, [r["completed"] for r in rows], width=2.5, color=GREEN, label="as prescribed")
    ax.step(x, [r["prescribed"] for r in rows], where="mid", color="black", linestyle="--",
            label="prescribed")  # fmt: skip
    ax.set_ylabel("sessions per week", fontsize=8)
    ax2 = ax.twinx()
    ax2.plot(x, [r["rolling4_adherence"] for r in rows], color=ORANGE, marker="o",
             label="rolling 4-week adherence")  # fmt: skip
    ax2.axhline(t.ADHERENCE_LAPSE, color=RED, linewidth=0.8, linestyle=":")
    ax2.set_ylim(0, 1.3)
    ax2.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_ylim(0, max(float(r["prescribed"] or 0) for r in rows) + 1)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper center", ncol=4,
              bbox_to_anchor=(0.5, -0.18), frameon=False)  # fmt: skip
    ax.set_title("Attendance against the prescription (per ISO week)", fontsize=10)
    _dates(ax, x[0] - timedelta(days=4), x[-1] + timedelta(days=4))
    return _png(fig)


def strength(
    e1rm_rows: Rows, mcv_rows: Rows, lapses: Sequence[Lapse], start: datetime, end: datetime,
    tz: str,
) -> bytes | None:  # fmt: skip
    panels = [p for p in ("e1rm", "mcv") if (e1rm_rows if p == "e1rm" else mcv_rows)]
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(WIDTH_IN, 2.5 * len(panels)), sharex=True)
    axes = list(axes) if len(panels) > 1 else [axes]
    s, e = local(start, tz), local(end, tz)
    for ax, panel in zip(axes, panels, strict=True):
        ax.grid(True, alpha=0.3)
        _shade_lapses(ax, lapses, tz)
        if panel == "e1rm":
            x = [local(r["time"], tz) for r in e1rm_rows]
            ax.fill_between(x, [r["e1rm_low_kg"] for r in e1rm_rows],
                            [r["e1rm_high_kg"] for r in e1rm_rows], color=BLUE, alpha=0.2,
                            label="uncertainty (±1 SD, at least ±7.5 %)")  # fmt: skip
            ax.plot(x, [r["e1rm_kg"] for r in e1rm_rows], color=BLUE, marker="o",
                    label="weekly mean e1RM")  # fmt: skip
            ax.set_ylabel("e1RM (kg)", fontsize=8)
            ax.set_title("Estimated 1RM per week (a trend, not a single truth)", fontsize=10)
        else:
            x = [local(r["time"], tz) for r in mcv_rows]
            ref = mcv_rows[0]["metric"]
            ax.plot(x, [float(r["mcv_ms"]) for r in mcv_rows], color=GREEN, marker="o",
                    label=f"MCV at {ref} (the prescribed load)")  # fmt: skip
            ax.set_ylabel("MCV (m/s)", fontsize=8)
            ax.set_title(f"Mean concentric velocity at the reference load {ref}", fontsize=10)
        _legend(ax, loc="lower right")
        _dates(ax, s, e)
    return _png(fig)


def load(rows: Rows, notes: Rows, start: datetime, end: datetime, tz: str) -> bytes | None:
    if not rows:
        return None
    fig, ax = _fig(2.8)
    ax.grid(True, alpha=0.3)
    x = [local(r["time"], tz) for r in rows]
    ax.plot(x, [r["max_load_kg"] for r in rows], color=BLUE, marker="o", markersize=3,
            label="heaviest load used")  # fmt: skip
    rx = [(xx, r["prescribed_load_kg"]) for xx, r in zip(x, rows, strict=True)
          if r["prescribed_load_kg"] is not None]  # fmt: skip
    if rx:
        ax.step([p[0] for p in rx], [p[1] for p in rx], where="post", color="black",
                linestyle="--", label="prescribed load")  # fmt: skip
    for i, n in enumerate(r for r in notes if r["relapse"] or r["symptoms"]):
        ax.axvline(local(n["time"], tz), color=RED if n["relapse"] else ORANGE, linewidth=1,
                   label="symptom note" if i == 0 else None)  # fmt: skip
    ax.set_ylabel("load (kg)", fontsize=8)
    ax.margins(y=0.3)
    _legend(ax, loc="lower right", ncol=3)
    ax.set_title("Load progression per session", fontsize=10)
    _dates(ax, local(start, tz), local(end, tz))
    return _png(fig)


def sides(
    rows: Rows, lapses: Sequence[Lapse], start: datetime, end: datetime, tz: str
) -> bytes | None:
    if not rows:
        return None
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(WIDTH_IN, 4.6), sharex=True)
    x = [local(r["time"], tz) for r in rows]
    ax.grid(True, alpha=0.3)
    ax.plot(x, [r["left_force_n"] for r in rows], color=BLUE, marker="o", markersize=3,
            label="left leg")  # fmt: skip
    ax.plot(x, [r["right_force_n"] for r in rows], color=ORANGE, marker="s", markersize=3,
            label="right leg")  # fmt: skip
    ax.set_ylabel("mean force (N)", fontsize=8)
    ax.set_title("Mean concentric force per leg, per session", fontsize=10)
    _legend(ax, loc="lower right", ncol=2)
    band = t.ASYMMETRY_BAND_PCT
    bx.grid(True, alpha=0.3)
    bx.axhspan(-band, band, color=GREEN, alpha=0.12, label=f"within ±{band:g} %")
    _shade_lapses(bx, lapses, tz)
    y = [float(r["asi_pct"]) for r in rows]
    bx.plot(x, y, color=GREY, linewidth=0.8)
    bx.scatter(x, y, c=[RED if abs(v) > band else GREEN for v in y], s=16, zorder=3)
    lim = max(2 * band, max(abs(v) for v in y) * 1.15)
    bx.set_ylim(-lim, lim)
    bx.set_ylabel("ASI (%): + right stronger", fontsize=8)
    bx.set_title("Asymmetry index per session with the ±10 % band", fontsize=10)
    _legend(bx, loc="lower right", ncol=2)
    _dates(bx, local(start, tz), local(end, tz))
    return _png(fig)


def effort(rows: Rows, start: datetime, end: datetime, tz: str) -> bytes | None:
    if not rows:
        return None
    fig, ax = _fig(2.6)
    ax.grid(True, alpha=0.3)
    for key, colour, label in (("rpe", BLUE, "RPE (CR10)"), ("fatigue", ORANGE, "fatigue (0-10)")):
        pts = [(local(r["time"], tz), float(r[key])) for r in rows if r[key] is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=colour, label=label,
                    markersize=4)  # fmt: skip
    for i, r in enumerate(r for r in rows if r["relapse"] or r["symptoms"]):
        ax.axvline(local(r["time"], tz), color=RED if r["relapse"] else GREY, linewidth=1,
                   linestyle="--", label="symptom / relapse note" if i == 0 else None)  # fmt: skip
    ax.set_ylim(0, 10.5)
    ax.set_title("Effort, fatigue and symptom notes", fontsize=10)
    _legend(ax, loc="upper left", ncol=3)
    _dates(ax, local(start, tz), local(end, tz))
    return _png(fig)


def velocity_loss(rows: Rows, start: datetime, end: datetime, tz: str) -> bytes | None:
    if not rows:
        return None
    fig, ax = _fig(HEIGHT_IN)
    ax.grid(True, alpha=0.3)
    x = [local(r["time"], tz) for r in rows]
    y = [float(r["velocity_loss_pct"]) for r in rows]
    limit = [float(r["prescribed_max_pct"] or t.VELOCITY_LOSS_PRESCRIBED_PCT) for r in rows]
    colours = [
        RED if v > t.VELOCITY_LOSS_FATIGUE_PCT else ORANGE if v > lim else BLUE
        for v, lim in zip(y, limit, strict=True)
    ]
    ax.scatter(x, y, c=colours, s=12, zorder=3, label="set")
    ax.step(x, limit, where="post", color=ORANGE, linestyle="--", label="prescribed limit")
    ax.axhline(t.VELOCITY_LOSS_FATIGUE_PCT, color=RED, linestyle=":", linewidth=0.8,
               label=f"unusual fatigue ({t.VELOCITY_LOSS_FATIGUE_PCT:g} %)")  # fmt: skip
    ax.set_ylim(0, max(50.0, max(y) * 1.1))
    _legend(ax, loc="upper left", ncol=3)
    ax.set_ylabel("velocity loss (%)", fontsize=8)
    ax.set_title("Velocity loss per set", fontsize=10)
    _dates(ax, local(start, tz), local(end, tz))
    return _png(fig)


_BANDS: Final = {  # test label -> (relative?, threshold)
    "T25FW (s)": (True, t.OUTCOME_T25FW_CHANGE_PCT),
    "5STS (s)": (False, t.OUTCOME_5STS_CHANGE_S),
    "6MW (m)": (True, t.OUTCOME_6MW_CHANGE_PCT),
    "MSWS-12": (False, t.OUTCOME_MSWS12_CHANGE_POINTS),
}


def outcomes(rows: Rows, tz: str) -> bytes | None:
    """One small chart per test: results over time and the band of no meaningful change
    around the first result (outside it = meaningful change)."""
    tests = [name for name in _BANDS if any(r["metric"] == name for r in rows)]
    if not tests:
        return None
    fig, axes = plt.subplots(1, len(tests), figsize=(WIDTH_IN, 2.6), squeeze=False)
    for ax, name in zip(axes[0], tests, strict=True):
        pts = [(local(r["time"], tz), float(r["value"])) for r in rows if r["metric"] == name]
        relative, thr = _BANDS[name]
        base = pts[0][1]
        half = base * thr / 100 if relative else thr
        ax.axhspan(base - half, base + half, color=GREY, alpha=0.15)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=BLUE)
        for x, y in pts:
            ax.annotate(f"{y:g}", (x, y), fontsize=7, textcoords="offset points", xytext=(0, 5))
        ax.set_title(f"{name}\nband: ±{thr:g}{' %' if relative else ''}", fontsize=8)
        ax.grid(True, alpha=0.3)
        loc = mdates.AutoDateLocator(minticks=2, maxticks=4)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(loc)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))  # type: ignore[no-untyped-call]
        ax.margins(x=0.15, y=0.25)
        ax.tick_params(labelsize=7)
    fig.suptitle("Clinical outcome tests (grey: within the meaningful-change threshold)",
                 fontsize=10)  # fmt: skip
    return _png(fig)
