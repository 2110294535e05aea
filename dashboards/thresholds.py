"""Named thresholds the dashboards colour by and the report draws (see ../shared DOMAIN notes).

Values marked *(ours)* are SledFleet's choices, not clinical standards; each one is a
documented constant so a panel and the printable report never disagree.
"""

from __future__ import annotations

from typing import Final

ASYMMETRY_BAND_PCT: Final = 10.0
"""|ASI| above 10 % is the usual criterion for a meaningful left/right asymmetry."""

ADHERENCE_LAPSE: Final = 0.75
"""Rolling 4-week adherence below this raises a lapse alert *(ours)*: red below it."""

ADHERENCE_TARGET: Final = 0.80
"""About 80 % adherence is what supervised MS programmes reach (Motl 2024): green from it."""

COMPLIANCE_TARGET: Final = 0.70
"""About 70 % compliance (Motl 2024): green from it, orange below."""

LAPSE_DAYS: Final = 7.0
"""No session for 7 days is a lapse *(ours)*: orange from it."""

DROPOUT_DAYS: Final = 28.0
"""No session for 28 days is a dropout risk *(ours)*: red from it."""

VELOCITY_LOSS_PRESCRIBED_PCT: Final = 20.0
"""Default prescribed maximum velocity loss per set (VL20, Pareja-Blanco 2017): orange from it."""

VELOCITY_LOSS_FATIGUE_PCT: Final = 40.0
"""Velocity loss above 40 % signals unusual fatigue *(ours)*: red from it."""

E1RM_MIN_REL_UNCERTAINTY: Final = 0.075
"""Smallest relative error reported for load–velocity e1RM estimates (7.5–30 %, PMC12036251).

The e1RM band is the weekly mean ± the standard deviation of that week's session
estimates, never narrower than ± this fraction of the mean.
"""

MACHINE_STALE_S: Final = 300.0
"""A machine not seen for 5 minutes is shown orange *(ours)*."""

MACHINE_OFFLINE_S: Final = 3600.0
"""A machine not seen for an hour is shown red *(ours)*."""

CLOCK_OFFSET_WARN_MS: Final = 250.0
"""Device clock offset beyond ±250 ms is shown orange *(ours)*."""

CLOCK_OFFSET_CRITICAL_MS: Final = 1000.0
"""Device clock offset beyond ±1 s is shown red *(ours)*."""

OUTCOME_T25FW_CHANGE_PCT: Final = 20.0
"""Timed 25-Foot Walk: a change of at least 20 % is meaningful (DOMAIN: clinical outcomes)."""

OUTCOME_5STS_CHANGE_S: Final = 6.3
"""Five Times Sit-to-Stand: MDC95 ≈ 6.3 s (one small study; DOMAIN)."""

OUTCOME_6MW_CHANGE_PCT: Final = 20.0
"""6-Minute Walk: 20 % change *(ours)*, the T25FW criterion, until a clinic sets its own."""

OUTCOME_MSWS12_CHANGE_POINTS: Final = 8.0
"""MSWS-12: a change of 8 points is meaningful (DOMAIN)."""
