"""PNG charts of the patient report (matplotlib, Agg backend: no display needed).

Each function takes the rows of one patient-dashboard query (dicts) and returns PNG bytes;
thresholds come from :mod:`dashboards.thresholds`, the same ones the panels colour by.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from dashboards import thresholds as t
from dashboards.report_model import Lapse

Rows = Sequence[Mapping[str, Any]]
WIDTH_IN, HEIGHT_IN, DPI = 8.0, 3.0, 110
BLUE, GREEN, ORANGE, RED, GREY = "#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9e9e9e"


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def _fig(height: float = HEIGHT_IN) -> tuple[Figure, Any]:
    fig, ax = plt.subplots(figsize=(WIDTH_IN, height))
    ax.grid(True, alpha=0.3)
    return fig, ax


def _dates(ax: Any) -> None:
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=4, maxticks=10))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))  # type: ignore[no-untyped-call]


def _shade_lapses(ax: Any, lapses: Sequence[Lapse]) -> None:
    for i, lapse in enumerate(lapses):
        ax.axvspan(
            lapse.start,
            lapse.end,
            color=RED,
            alpha=0.08,
            label="lapse (no session for over 7 days)" if i == 0 else None,
        )


def _legend(ax: Any, **kwargs: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def _empty(ax: Any, what: str) -> None:
    ax.text(
        0.5,
        0.5,
        f"no {what} in this period",
        ha="center",
        va="center",
        transform=ax.transAxes,
        color=GREY,
    )


def calendar(rows: Rows, start: datetime, end: datetime) -> bytes:
    """Weeks (columns) × weekdays (rows); colour = sessions that day, empty weeks = lapses."""
    monday = (start - timedelta(days=start.weekday())).date()
    weeks = (end.date() - monday).days // 7 + 1
    grid = [[0.0] * weeks for _ in range(7)]
    for r in rows:
        d = r["time"].date()
        w = (d - monday).days // 7
        if 0 <= w < weeks:
            grid[d.weekday()][w] += float(r["sessions"])
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 2.4))
    ax.imshow(grid, aspect="auto", cmap="Greens", vmin=0, vmax=max(2.0, *map(max, grid)))
    for w in range(weeks):
        for dow in range(7):
            if grid[dow][w]:
                ax.text(w, dow, f"{grid[dow][w]:g}", ha="center", va="center", fontsize=8)
    ax.set_yticks(range(7), ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], fontsize=8)
    labels = [(monday + timedelta(weeks=w)).strftime("%d %b") for w in range(weeks)]
    step = max(1, weeks // 12)
    ax.set_xticks(range(0, weeks, step), labels[::step], fontsize=8)
    ax.set_title("Session calendar (sessions per day, weeks starting Monday)", fontsize=10)
    return _png(fig)


def adherence(rows: Rows) -> bytes:
    fig, ax = _fig(3.4)
    if not rows:
        _empty(ax, "prescription weeks")
        return _png(fig)
    x = [r["time"] for r in rows]
    ax.bar(x, [r["attended"] for r in rows], width=5, color=BLUE, label="attended")
    ax.bar(
        x, [r["completed"] for r in rows], width=2.5, color=GREEN, label="completed as prescribed"
    )
    ax.step(
        x,
        [r["prescribed"] for r in rows],
        where="mid",
        color="black",
        linestyle="--",
        label="prescribed",
    )
    ax.set_ylabel("sessions per week")
    ax2 = ax.twinx()
    ax2.plot(
        x,
        [r["rolling4_adherence"] for r in rows],
        color=ORANGE,
        marker="o",
        label="rolling 4-week adherence",
    )
    ax2.axhline(t.ADHERENCE_LAPSE, color=RED, linewidth=0.8, linestyle=":")
    ax2.set_ylim(0, 1.3)
    ax2.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_ylim(0, max(float(r["prescribed"] or 0) for r in rows) + 1)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(
        h1 + h2,
        l1 + l2,
        fontsize=7,
        loc="upper center",
        ncol=4,
        bbox_to_anchor=(0.5, -0.15),
        frameon=False,
    )
    ax.set_title("Adherence against the prescription (per ISO week)", fontsize=10)
    _dates(ax)
    return _png(fig)


def strength(e1rm_rows: Rows, mcv_rows: Rows, lapses: Sequence[Lapse]) -> bytes:
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(WIDTH_IN, 5.0), sharex=True)
    for a in (ax, bx):
        a.grid(True, alpha=0.3)
        _shade_lapses(a, lapses)
    if e1rm_rows:
        x = [r["time"] for r in e1rm_rows]
        ax.fill_between(
            x,
            [r["e1rm_low_kg"] for r in e1rm_rows],
            [r["e1rm_high_kg"] for r in e1rm_rows],
            color=BLUE,
            alpha=0.2,
            label="uncertainty (±1 SD, at least ±7.5 %)",
        )
        ax.plot(
            x, [r["e1rm_kg"] for r in e1rm_rows], color=BLUE, marker="o", label="weekly mean e1RM"
        )
    else:
        _empty(ax, "e1RM estimates")
    ax.set_ylabel("e1RM (kg)")
    _legend(ax, fontsize=7, loc="upper left")
    ax.set_title("Strength trend: estimated 1RM and MCV at reference loads", fontsize=10)
    by_load: dict[str, list[tuple[datetime, float]]] = {}
    for r in mcv_rows:
        by_load.setdefault(str(r["metric"]), []).append((r["time"], float(r["mcv_ms"])))
    for load, pts in sorted(by_load.items(), key=lambda kv: float(kv[0].split()[0])):
        bx.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"MCV @ {load}")
    if not by_load:
        _empty(bx, "reference-load sets")
    bx.set_ylabel("MCV (m/s)")
    _legend(bx, fontsize=7, loc="upper left", ncol=3)
    _dates(bx)
    return _png(fig)


def asymmetry(rows: Rows, lapses: Sequence[Lapse]) -> bytes:
    fig, ax = _fig()
    band = t.ASYMMETRY_BAND_PCT
    ax.axhspan(-band, band, color=GREEN, alpha=0.12, label=f"within ±{band:g} %")
    _shade_lapses(ax, lapses)
    if rows:
        x = [r["time"] for r in rows]
        y = [float(r["asi_pct"]) for r in rows]
        colours = [RED if abs(v) > band else GREEN for v in y]
        ax.plot(x, y, color=GREY, linewidth=0.8)
        ax.scatter(x, y, c=colours, s=18, zorder=3)
        lim = max(2 * band, max(abs(v) for v in y) * 1.15)
        ax.set_ylim(-lim, lim)
    else:
        _empty(ax, "asymmetry data")
    ax.set_ylabel("ASI (%)  + right stronger")
    _legend(ax, fontsize=7, loc="upper right")
    ax.set_title("Left/right asymmetry per session", fontsize=10)
    _dates(ax)
    return _png(fig)


def velocity_loss(rows: Rows) -> bytes:
    fig, ax = _fig()
    if rows:
        x = [r["time"] for r in rows]
        y = [float(r["velocity_loss_pct"]) for r in rows]
        limit = [float(r["prescribed_max_pct"] or t.VELOCITY_LOSS_PRESCRIBED_PCT) for r in rows]
        colours = [
            RED if v > t.VELOCITY_LOSS_FATIGUE_PCT else ORANGE if v > lim else BLUE
            for v, lim in zip(y, limit, strict=True)
        ]
        ax.scatter(x, y, c=colours, s=14, zorder=3, label="set")
        ax.step(x, limit, where="post", color=ORANGE, linestyle="--", label="prescribed limit")
        ax.axhline(
            t.VELOCITY_LOSS_FATIGUE_PCT,
            color=RED,
            linestyle=":",
            linewidth=0.8,
            label=f"unusual fatigue ({t.VELOCITY_LOSS_FATIGUE_PCT:g} %)",
        )
        ax.set_ylim(0, max(50.0, max(y) * 1.1))
        ax.legend(fontsize=7, loc="upper left", ncol=3)
    else:
        _empty(ax, "sets")
    ax.set_ylabel("velocity loss (%)")
    ax.set_title("Velocity loss per set", fontsize=10)
    _dates(ax)
    return _png(fig)


def outcomes(rows: Rows, start: datetime, end: datetime) -> bytes:
    tests = sorted({str(r["metric"]) for r in rows})
    n = max(1, len(tests))
    fig, axes = plt.subplots(1, n, figsize=(WIDTH_IN, 2.6), squeeze=False)
    for ax, name in zip(axes[0], tests, strict=False):
        pts = [(r["time"], float(r["value"])) for r in rows if r["metric"] == name]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=BLUE)
        for x, y in pts:
            ax.annotate(f"{y:g}", (x, y), fontsize=7, textcoords="offset points", xytext=(0, 5))
        ax.set_title(name, fontsize=9)
        ax.set_xlim(start, end)
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(mdates.MonthLocator())  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%b"))  # type: ignore[no-untyped-call]
        ax.margins(y=0.25)
        ax.tick_params(labelsize=7)
    if not tests:
        _empty(axes[0][0], "clinical outcome tests")
    fig.suptitle("Clinical outcome tests (same period)", fontsize=10)
    return _png(fig)
