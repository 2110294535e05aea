from __future__ import annotations

import numpy as np
import pytest

from tests.unit.stream.core.helpers import kind, run
from tests.unit.stream.core.synth import T0, Signal, check_in, check_out, frames


def _session(sig: Signal, **kw: object) -> list[tuple[str, dict]]:
    items: list[tuple[str, dict]] = [("event", check_in(T0 - 10**9))]
    items += [("frame", f) for f in frames(sig, **kw)]  # type: ignore[arg-type]
    items.append(("event", check_out(T0 + round(sig.t_s * 1e9))))
    return items


def test_known_stroke_metrics() -> None:
    sig = Signal().rest(2)
    for _ in range(5):
        sig.rep(rom=400, up_s=1.5, down_s=2.0, fl=280, fr=320)
    out = run(_session(sig))
    reps = kind(out, "rep")
    assert len(reps) == 5
    for r, truth in zip(reps, sig.truth, strict=True):
        assert r["valid"]
        assert r["patient_id"] == "p1"
        assert r["rom_mm"] == pytest.approx(400, abs=1)
        assert r["mcv_ms"] == pytest.approx(truth.mcv_ms, abs=0.005)
        assert r["pv_ms"] == pytest.approx(truth.pv_ms, abs=0.005)
        assert r["concentric_s"] == pytest.approx(1.5, abs=0.03)
        assert r["eccentric_s"] == pytest.approx(2.0, abs=0.03)
        assert r["pv_position_pct"] == pytest.approx(50, abs=2)
        assert r["asi_pct"] == pytest.approx(12.5, abs=0.01)
        assert r["weaker_side"] == "left"
        assert r["start_ns"] == pytest.approx(T0 + truth.start_s * 1e9, abs=0.03e9)
        assert r["top_ns"] == pytest.approx(T0 + truth.top_s * 1e9, abs=0.03e9)
    (s,) = kind(out, "set")
    assert s["reps"] == 5
    (sess,) = kind(out, "session")
    assert sess["end_reason"] == "checkout"
    assert sess["reps"] == 5
    assert sess["volume_load_kg"] == pytest.approx(250)


def _set_of(n: int, sig: Signal | None = None, **kw: float) -> Signal:
    sig = sig or Signal().rest(2)
    for _ in range(n):
        sig.rep(**kw)  # type: ignore[arg-type]
    return sig


def _keyed(out: list[dict]) -> dict:
    from stream.records import natural_key

    return {(r["kind"], *natural_key(r)): {**r, "emitted_at_ns": 0} for r in out}


def test_cosine_stroke_without_refinement() -> None:
    from stream.core.settings import CoreSettings

    sig = Signal().rest(2)
    for _ in range(3):
        sig.rep(rom=400, up_s=1.5, cosine=True)
    out = run(_session(sig), CoreSettings(refine_turnarounds=False))
    for r, truth in zip(kind(out, "rep"), sig.truth, strict=True):
        assert r["mcv_ms"] == pytest.approx(truth.mcv_ms, rel=0.03)
        assert r["pv_ms"] == pytest.approx(truth.pv_ms, rel=0.02)


@pytest.mark.parametrize("first", range(10, 100, 7))
def test_rep_split_across_frames_at_every_point(first: int) -> None:
    sig = _set_of(3)
    ref = _keyed(run(_session(sig)))
    n = len(sig.x)
    splits = [first, *range(first + 50, n, 50)]
    if n - splits[-1] < 10:
        splits.pop()
    got = _keyed(run(_session(sig, splits=splits)))
    assert got.keys() == ref.keys()
    for k, r in ref.items():
        for f, v in r.items():
            if isinstance(v, float):
                assert got[k][f] == pytest.approx(v, rel=1e-9, abs=1e-9), (k, f)
            else:
                assert got[k][f] == v, (k, f)


def test_pause_at_the_top_is_excluded_from_durations() -> None:
    sig = _set_of(3, top_pause_s=1.2, up_s=1.0, down_s=1.5)
    reps = kind(run(_session(sig)), "rep")
    assert len(reps) == 3
    for r, truth in zip(reps, sig.truth, strict=True):
        assert r["concentric_s"] == pytest.approx(1.0, abs=0.02)
        assert r["eccentric_s"] == pytest.approx(1.5, abs=0.03)
        assert r["mcv_ms"] == pytest.approx(truth.mcv_ms, abs=0.005)
        assert r["top_ns"] == pytest.approx(T0 + truth.top_s * 1e9, abs=0.02e9)


def test_partial_rep_is_recorded_not_dropped() -> None:
    sig = Signal().rest(2).rep().rep(rom=100, up_s=0.6, down_s=0.8).rep()
    out = run(_session(sig))
    reps = kind(out, "rep")
    assert [r["valid"] for r in reps] == [True, False, True]
    assert reps[1]["rom_mm"] == pytest.approx(100, abs=1.5)
    assert [r["rep_no"] for r in reps] == [1, 2, 3]
    (s,) = kind(out, "set")
    assert (s["reps"], s["partial_reps"]) == (2, 1)


def test_calibrated_rom_raises_the_rep_threshold() -> None:
    sig = _set_of(2, rom=250)
    items = _session(sig)
    calibrated = {**check_in(T0), "type": "calibrated", "usable_rom_mm": 600.0}
    items.insert(1, ("event", calibrated))
    reps = kind(run(items), "rep")
    assert [r["valid"] for r in reps] == [False, False]  # 250 < 50 % of 600


def test_dropout_mid_rep_is_flagged() -> None:
    sig = _set_of(3)
    mid = round((sig.truth[1].start_s + 0.7) * sig.rate)
    out = run(_session(sig, dropouts=(mid, mid + 6)))
    reps = kind(out, "rep")
    assert len(reps) == 3
    assert [r["dropout_samples"] for r in reps] == [0, 6, 0]
    assert reps[1]["rom_mm"] == pytest.approx(400, abs=2)
    assert reps[1]["mcv_ms"] == pytest.approx(sig.truth[1].mcv_ms, abs=0.01)


def test_tremor_and_noise_do_not_add_reps() -> None:
    sig = _set_of(5)
    x = np.array(sig.x)
    t = np.arange(x.size) / sig.rate
    moving = np.abs(np.gradient(x)) > 0.05
    sig.x = list(x + 1.0 * np.sin(2 * np.pi * 7 * t) * moving)
    out = run(_session(sig, noise_mm=0.5))
    reps = kind(out, "rep")
    assert len(reps) == 5
    for r, truth in zip(reps, sig.truth, strict=True):
        assert r["mcv_ms"] == pytest.approx(truth.mcv_ms, abs=0.01)
        assert r["rom_mm"] == pytest.approx(400, abs=3)
        assert r["sign_changes"] >= 0


def test_tremor_at_rest_is_not_a_rep() -> None:
    sig = Signal().rest(10)
    t = np.arange(len(sig.x)) / sig.rate
    sig.x = list(np.array(sig.x) + 3.0 * np.sin(2 * np.pi * 5 * t))  # ±3 mm jitter
    assert kind(run(_session(sig)), "rep") == []


def test_patient_stopping_mid_set() -> None:
    sig = _set_of(3)
    sig.rest(30)  # stops, then checks out without finishing the set
    out = run(_session(sig))
    (s,) = kind(out, "set")
    assert s["reps"] == 3
    assert s["velocity_loss_pct"] == pytest.approx(0, abs=1)
    (sess,) = kind(out, "session")
    assert sess["reps"] == 3


def test_set_split_at_the_gap_rule() -> None:
    for gap, sets in ((55.0, 1), (65.0, 2)):
        sig = _set_of(2)
        sig.rest(gap - 1.0)  # the set function already rests 1 s after each rep
        _set_of(2, sig)
        out = run(_session(sig))
        assert len(kind(out, "set")) == sets
        assert [r["set_no"] for r in kind(out, "rep")] == (
            [1, 1, 1, 1] if sets == 1 else [1, 1, 2, 2]
        )


def test_velocity_loss_of_a_fatiguing_set() -> None:
    sig = Signal().rest(2)
    for up in (1.0, 1.1, 1.25, 1.4):
        sig.rep(rom=400, up_s=up)
    (s,) = kind(run(_session(sig)), "set")
    assert s["best_mcv_ms"] == pytest.approx(0.4, abs=0.005)
    assert s["last_mcv_ms"] == pytest.approx(0.4 / 1.4, abs=0.005)
    assert s["velocity_loss_pct"] == pytest.approx((1 - 1 / 1.4) * 100, abs=1.0)


def test_duplicate_and_out_of_order_frames() -> None:
    sig = _set_of(3)
    items = _session(sig)
    ref = _keyed(run(items))
    frames_ = [i for i in items if i[0] == "frame"]
    shuffled = list(frames_)
    for k in range(2, len(shuffled) - 2, 7):  # swap neighbours
        shuffled[k], shuffled[k + 1] = shuffled[k + 1], shuffled[k]
    shuffled += frames_[5:9]  # duplicates, late
    shuffled.insert(12, frames_[3])  # duplicate, early
    mixed = [items[0], *shuffled, items[-1]]
    got = run(mixed, ticks=None)
    assert _keyed([r for r in got if r["kind"] != "machine_status"]) == {
        k: v for k, v in ref.items() if k[0] != "machine_status"
    }


def _silence(clock_ns: int, silent_s: float) -> tuple[str, dict]:
    return ("silence", {"clock_ns": clock_ns, "silent_ns": int(silent_s * 1e9), "wall_ns": 0})


def test_lost_frame_is_a_gap_with_an_alert_once_the_machine_is_silent() -> None:
    from stream.core.settings import CoreSettings

    s = CoreSettings()
    sig = _set_of(3)
    items = _session(sig)
    lost = [i for i in items if not (i[0] == "frame" and i[1]["seq"] == 20)]
    clock = T0 + round(sig.t_s * 1e9)
    # the machine's clock running on is no reason to give the hole up...
    out = run([*lost, ("tick", {"now_ns": T0 + 10**12})])
    assert kind(out, "alert") == []
    assert kind(out, "rep") != []
    # ...silence is: a short one is not enough, the reorder hold is
    out = run([*lost, _silence(clock, s.reorder_hold_s / 2)])
    assert kind(out, "alert") == []
    out = run([*lost, _silence(clock, s.reorder_hold_s), ("tick", {"now_ns": T0 + 10**12})])
    (gap,) = kind(out, "alert")
    assert gap["rule"] == "frame_gap"
    assert gap["value"] == 1
    assert kind(out, "machine_status")[-1]["frames_missing"] == 1
    assert len(kind(out, "rep")) == 3


def test_lost_frame_is_given_up_when_the_reorder_buffer_overflows() -> None:
    from stream.core.settings import CoreSettings

    s = CoreSettings(reorder_window=5)
    sig = _set_of(3)
    items = _session(sig, size=20)
    lost = [i for i in items if not (i[0] == "frame" and i[1]["seq"] == 20)]
    out = run(lost[:-1], s)  # no check-out, no tick, no silence
    (gap,) = kind(out, "alert")
    assert gap["rule"] == "frame_gap"
    assert len(kind(out, "rep")) >= 2


def test_a_frame_far_behind_in_device_time_is_waited_for() -> None:
    """Two bridges in a share group: one machine's frames reach Kafka tens of frames out
    of order within a second (a backlog burst), so device time runs far past the
    missing frame before it arrives. Only the buffer's size or silence gives it up."""
    from stream.core.settings import CoreSettings

    s = CoreSettings(reorder_window=64, reorder_hold_s=2.0)
    sig = _set_of(4)
    items = _session(sig, size=20)  # 20-sample frames: 0.2 s of device time each
    ref = _keyed(run(items, s))
    fr = [i for i in items if i[0] == "frame"]
    late = fr[10]
    behind = [*fr[:10], *fr[11:60], late, *fr[60:]]  # ~10 s of device time later
    got = run([items[0], *behind, items[-1]], s, roundtrip=True)
    assert [r for r in got if r["kind"] == "dead_letter"] == []
    assert _keyed([r for r in got if r["kind"] != "machine_status"]) == {
        k: v for k, v in ref.items() if k[0] != "machine_status"
    }


def test_ticks_while_a_frame_is_missing_do_not_split_the_set() -> None:
    from stream.core.settings import CoreSettings

    s = CoreSettings(reorder_window=64)
    sig = _set_of(4)
    items = _session(sig, size=20)
    ref = _keyed(run(items, s))
    fr = [i for i in items if i[0] == "frame"]
    far = T0 + round(sig.t_s * 1e9) + 3600 * 10**9  # far past the quiet flush
    mixed = [items[0], *fr[:30], *fr[31:50], ("tick", {"now_ns": far}), fr[30], *fr[50:]]
    got = run([*mixed, items[-1]], s)
    assert _keyed([r for r in got if r["kind"] not in ("machine_status",)]) == {
        k: v for k, v in ref.items() if k[0] != "machine_status"
    }


def test_session_end_by_idle_timeout() -> None:
    sig = _set_of(3)
    items = [("event", check_in(T0 - 10**9))] + [("frame", f) for f in frames(sig)]
    out = run([*items, ("tick", {"now_ns": T0 + 3600 * 10**9})])
    assert kind(out, "session") == []  # 1 h: still open
    out = run([*items, ("tick", {"now_ns": T0 + 5 * 3600 * 10**9})])
    (sess,) = kind(out, "session")
    assert sess["end_reason"] == "idle_timeout"
    assert sess["reps"] == 3
    assert sess["end_ns"] == kind(out, "rep")[-1]["end_ns"]


def test_checkout_before_the_last_frames_waits_for_them() -> None:
    sig = _set_of(3)
    fr = frames(sig)
    end = T0 + round(sig.t_s * 1e9)
    items = [("event", check_in(T0 - 10**9)), *[("frame", f) for f in fr[:-8]]]
    items += [("event", check_out(end)), *[("frame", f) for f in fr[-8:]]]
    out = run([*items, ("tick", {"now_ns": end + 60 * 10**9})])
    (sess,) = kind(out, "session")
    assert sess["reps"] == 3
    assert sess["end_reason"] == "checkout"


def test_frames_before_check_in_are_held_for_the_patient_id() -> None:
    sig = _set_of(3)
    fr = frames(sig)
    items = [("frame", f) for f in fr] + [("event", check_in(T0 - 10**9))]
    items.append(("event", check_out(T0 + round(sig.t_s * 1e9))))
    out = run(items)
    assert len(kind(out, "rep")) == 3
    assert all(r["patient_id"] == "p1" for r in out if r["kind"] in ("rep", "set", "session"))


def test_reps_without_a_session_are_recorded_unattributed() -> None:
    sig = _set_of(2)
    out = run([("frame", f) for f in frames(sig, session_id=None)])
    out += run(
        [("frame", f) for f in frames(sig, session_id=None)]
        + [("tick", {"now_ns": T0 + 5 * 3600 * 10**9})]
    )
    reps = kind(out, "rep")
    assert reps
    assert all(r["patient_id"] is None for r in reps)
    assert reps[0]["session_id"].startswith("anon-m1-")


def test_state_json_round_trip_gives_identical_outputs() -> None:
    sig = _set_of(4, top_pause_s=0.5)
    sig.rest(70)
    _set_of(2, sig)
    items = _session(sig, noise_mm=0.5)
    items.append(("tick", {"now_ns": T0 + 10**13}))
    assert run(items, roundtrip=True) == run(items)


def test_every_record_matches_its_typed_dict() -> None:
    sig = _set_of(2)
    out = run([*_session(sig), ("state", _online(1500.0)), ("tick", {"now_ns": T0 + 10**12})])
    assert {r["kind"] for r in out} == {"rep", "set", "session", "machine_status"}


def _online(offset_ms: float) -> dict:
    return {
        "v": 1,
        "clinic_id": "c1",
        "machine_id": "m1",
        "status": "online",
        "ts_ns": T0,
        "rate_hz": 100.0,
        "agent_version": "0.1.0",
        "firmware": "fw1",
        "config_version": 3,
        "clock_offset_ms": offset_ms,
        "outbox_dropped": 0,
    }


def test_checkout_before_any_frame_waits_for_the_frames() -> None:
    sig = _set_of(2)
    end = T0 + round(sig.t_s * 1e9)
    items = [("event", check_in(T0 - 10**9)), ("event", check_out(end))]
    items += [("frame", f) for f in frames(sig)]
    out = run([*items, ("tick", {"now_ns": end + 60 * 10**9})])
    (sess,) = kind(out, "session")
    assert sess["reps"] == 2
    assert sess["end_ns"] == end


def test_state_loaded_without_settings_takes_the_processors() -> None:
    import json

    from stream.core import MachineProcessor, MachineState
    from stream.core.settings import CoreSettings

    s = CoreSettings(filter_window_s=0.21, reorder_window=3)
    p = MachineProcessor(s)
    st = p.new_state("c1", "m1")
    sig = _set_of(2)
    fr = frames(sig)
    for f in fr[:20]:
        p.on_frame(st, f, 0)
    loaded = MachineState.from_json(json.loads(json.dumps(st.to_json())))  # default settings
    p.on_frame(loaded, fr[20], 0)
    assert loaded.settings is s
    assert loaded.seq.window == 3
    assert loaded.cond is not None
    assert loaded.cond.half == 10  # 21-sample window at 100 Hz
