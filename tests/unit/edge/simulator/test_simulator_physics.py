"""Physics of the simulator: strokes, forces, the L/R split and sensor effects."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.simulator.physics import (
    FORCE_NOISE_N,
    POSITION_NOISE_MM,
    SATURATED_N,
    Mechanics,
    Segment,
    SensorEffects,
    asi_of,
    concentric_metrics,
    min_jerk,
    perturb,
    render,
)

RATE = 100.0
MECH = Mechanics(incline_deg=45.0)


def stroke(rom: float = 400.0, n_con: int = 100, n_top: int = 0, n_ecc: int = 150) -> list[Segment]:
    segs = [Segment("rest", 50), Segment("move", n_con, 0.0, rom)]
    if n_top:
        segs.append(Segment("hold", n_top, rom, rom))
    return [*segs, Segment("move", n_ecc, rom, 0.0), Segment("rest", 50)]


def test_min_jerk_shape_is_zero_at_the_ends_with_mean_one() -> None:
    x, v, a = min_jerk(1000)
    assert x[0] == 0.0
    assert v[0] == 0.0
    assert a[0] == 0.0
    assert v.mean() == pytest.approx(1.0, abs=1e-5)
    assert v.max() == pytest.approx(1.875, abs=1e-4)
    assert x[-1] == pytest.approx(1.0, abs=1e-3)


def test_a_known_stroke_has_the_rom_and_mcv_that_was_set() -> None:
    sig = render(stroke(rom=400.0, n_con=100), 60.0, 0.0, RATE, MECH)
    start, top = 50, 150
    assert sig.position_mm[start] == 0.0
    assert sig.position_mm[top] == pytest.approx(400.0)  # first sample of the descent
    assert sig.velocity_ms[start] == 0.0
    assert sig.velocity_ms[top] == 0.0
    duration = (top - start) / RATE
    mcv = (sig.position_mm[top] - sig.position_mm[start]) / 1000.0 / duration
    assert mcv == pytest.approx(0.4)
    assert sig.velocity_ms[start:top].mean() == pytest.approx(0.4, rel=1e-3)
    assert sig.velocity_ms[start:top].max() == pytest.approx(1.875 * 0.4, rel=1e-3)
    # velocity is the derivative of position
    dx = np.diff(sig.position_mm[start : top + 1]) / 1000.0 * RATE
    mid = (sig.velocity_ms[start:top] + np.append(sig.velocity_ms[start + 1 : top], 0.0)) / 2
    assert np.max(np.abs(dx - mid)) < 0.01
    truth = concentric_metrics(400.0, 100, 60.0, 0.0, RATE, MECH)
    assert truth["mcv_ms"] == pytest.approx(0.4)
    assert truth["pv_ms"] == pytest.approx(0.75)


@pytest.mark.parametrize("asi", [0.0, 8.0, 15.0, -12.0, -25.0])
def test_force_split_gives_the_configured_asi(asi: float) -> None:
    sig = render(stroke(), 80.0, asi, RATE, MECH)
    left = sig.force_left_n[50:150].mean()
    right = sig.force_right_n[50:150].mean()
    assert asi_of(float(left), float(right)) == pytest.approx(asi, abs=1e-9)
    if asi > 0:
        assert left < right  # positive ASI: left weaker
    truth = concentric_metrics(400.0, 100, 80.0, asi, RATE, MECH)
    assert truth["asi_pct"] == pytest.approx(asi, abs=1e-9)
    assert truth["mean_force_n"] == pytest.approx(float(sig.force_n[50:150].mean()), rel=1e-9)


def test_forces_follow_the_inclined_sled() -> None:
    load = 70.0
    sig = render(stroke(n_top=60), load, 0.0, RATE, MECH)
    g_force = (load + MECH.sled_mass_kg) * 9.80665 * math.sin(math.radians(45.0))
    # holding still at the top: the plates carry the weight component along the rail
    assert sig.force_n[160:200] == pytest.approx(np.full(40, g_force))
    # mean concentric force ≈ m·g·sinθ + friction (the mean acceleration is ~0)
    mean_con = float(sig.force_n[50:150].mean())
    assert mean_con == pytest.approx(g_force + MECH.friction_force(load), rel=0.02)
    assert float(sig.force_n[50:150].max()) > g_force  # accelerating phase


def test_idle_force_is_zero_and_rest_ramps_to_the_stroke() -> None:
    segs = [Segment("idle", 30), Segment("rest", 50), *stroke()[1:]]
    sig = render(segs, 50.0, 0.0, RATE, MECH)
    assert np.all(sig.force_n[:30] == 0.0)
    ramp = sig.force_n[30:80]
    assert np.all(np.diff(ramp) >= -1e-9)  # builds up monotonically before the onset
    assert ramp[-1] == pytest.approx(MECH.gravity_force(50.0), rel=0.05)


def test_noise_dropouts_and_faults() -> None:
    segs = stroke()
    sig = render(segs, 60.0, 10.0, RATE, MECH)
    rng = np.random.default_rng(3)
    m = perturb(sig, segs, 60.0, RATE, MECH, SensorEffects(), [(10, 3), (200, 1)], rng)
    assert m.position_mm[10:13] == [None, None, None]
    assert m.force_left_n[200] is None
    assert sum(1 for v in m.position_mm if v is None) == 4
    pos = np.array([np.nan if v is None else v for v in m.position_mm])
    err = pos - sig.position_mm
    assert np.nanstd(err) == pytest.approx(POSITION_NOISE_MM, rel=0.3)
    fl = np.array([np.nan if v is None else v for v in m.force_left_n])
    assert np.nanstd(fl - sig.force_left_n) == pytest.approx(FORCE_NOISE_N, rel=0.3)
    sat = perturb(sig, segs, 60.0, RATE, MECH, SensorEffects(fault="saturated_right"), [], rng)
    assert set(sat.force_right_n) == {SATURATED_N}
    flat = perturb(sig, segs, 60.0, RATE, MECH, SensorEffects(fault="flat_left"), [], rng)
    assert len(set(flat.force_left_n)) == 1


def test_tremor_vanishes_at_the_turnarounds() -> None:
    segs = stroke()
    sig = render(segs, 60.0, 0.0, RATE, MECH)
    fx = SensorEffects(tremor_mm=1.5, tremor_hz=8.0, position_noise_mm=0.0, force_noise_n=0.0)
    m = perturb(sig, segs, 60.0, RATE, MECH, fx, [], np.random.default_rng(1))
    pos = np.array(m.position_mm, dtype=float)
    assert abs(pos[50] - 0.0) < 0.06
    assert abs(pos[150] - 400.0) < 0.06
    assert np.max(np.abs(pos - sig.position_mm)) > 0.5  # but it is there mid-stroke
