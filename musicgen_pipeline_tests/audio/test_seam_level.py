"""A seam's level (`seam_level`): a hole in the overlap is lifted to its sides' level, a loud overlap is
left alone, the gain is 1 where the overlap meets the audio either side, peaks stay under the music's
own, and `render_transition` applies it only when the plan asks; the incoming segment arrives at the
outgoing one's level and glides to its own (capped, chained seam by seam, stems scaled alike)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.audio.join import join_segments, score_seam
from musicgen_pipeline.audio.seam_level import (
    MAX_GLIDE_DB,
    MAX_LIFT_DB,
    arrival_db,
    held_dip,
    hold_level,
    hold_level_gain,
    level_glides,
    level_step_db,
    meter_step_db,
    metered_power,
)
from musicgen_pipeline.audio.seam_options import TransitionOptions
from musicgen_pipeline.audio.seam_plan import plan_transition
from musicgen_pipeline.audio.seam_render import render_transition, with_gain

SR = 32000


def _levels_db(y: np.ndarray, sr: int = SR) -> np.ndarray:
    """400 ms mean-power levels, 50 ms apart, of a (channels, frames) array (dB)."""
    y = np.atleast_2d(y).mean(axis=0)
    win, hop = round(0.4 * sr), round(0.05 * sr)
    return np.array([10 * np.log10(np.mean(y[s : s + win] ** 2)) for s in range(0, y.size - win + 1, hop)])


def _noise(seconds: float, amplitude: float | np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal((2, round(seconds * SR))) * amplitude).astype(np.float32)


def _hole(depth_db: float) -> np.ndarray:
    """A 2 s overlap whose middle 0.8 s is `depth_db` quieter than the rest."""
    shape = np.ones(2 * SR)
    shape[round(0.6 * SR) : round(1.4 * SR)] = 10 ** (-depth_db / 20)
    return _noise(2.0, shape, 1)


def test_a_hole_is_lifted_to_the_sides_level_and_the_ends_are_untouched() -> None:
    before, after = _noise(3.0, 1.0, 2), _noise(3.0, 1.0, 3)
    mix = _hole(3.0)
    held = hold_level(mix, before, after, SR)
    side = np.median(_levels_db(np.concatenate([before, after], axis=1)))
    dip_before, dip_after = side - _levels_db(mix).min(), side - _levels_db(held).min()
    assert dip_before > 2.5
    assert dip_after < 0.3  # a 400 ms window still straddles the hole's edges, where the lift ramps
    # Measured once, the lift falls short where a window straddles an edge (its power is the mean of
    # gain^2 x power, not gain^2 x mean power); measured again on the lifted overlap, it closes in.
    once = mix * hold_level_gain(mix, before, after, SR, passes=1)
    assert side - _levels_db(once).min() > dip_after + 0.15
    gain = hold_level_gain(mix, before, after, SR)
    assert gain[0] == pytest.approx(1.0, abs=1e-3) and gain[-1] == pytest.approx(1.0, abs=1e-3)
    assert np.all(gain >= 1.0) and np.max(np.abs(np.diff(gain))) < 1e-3  # no step anywhere


def test_the_lift_is_capped() -> None:
    before, after = _noise(3.0, 1.0, 2), _noise(3.0, 1.0, 3)
    gain = hold_level_gain(_hole(12.0), before, after, SR)
    assert 20 * np.log10(gain.max()) == pytest.approx(MAX_LIFT_DB, abs=0.01)


def test_an_overlap_at_its_sides_level_or_louder_is_left_as_it_is() -> None:
    before, after = _noise(3.0, 1.0, 2), _noise(3.0, 1.0, 3)
    assert np.max(hold_level_gain(_noise(2.0, 2.0, 4), before, after, SR)) == 1.0  # 6 dB louder: not cut
    # At the sides' own level only the 400 ms windows' own spread is left: under 0.2 dB of lift.
    assert 20 * np.log10(hold_level_gain(_noise(2.0, 1.0, 4), before, after, SR).max()) < 0.2


def test_the_target_follows_the_crossfade_between_two_levels() -> None:
    # prev sits 3 dB under nxt and the overlap stays at prev's level throughout: the target rises from
    # prev's level to nxt's as the equal-power fade does, so the lift is 10 log10(1 + fade_in^2) dB.
    before, after = _noise(3.0, 2**-0.5, 2), _noise(3.0, 1.0, 3)
    lift_db = 20 * np.log10(hold_level_gain(_noise(2.0, 2**-0.5, 4), before, after, SR))
    for t in (0.4, 1.0, 1.6):
        fade_in = np.sin(0.5 * np.pi * t / 2.0)
        assert lift_db[round(t * SR)] == pytest.approx(10 * np.log10(1 + fade_in**2), abs=0.3), t


def test_a_hole_only_the_mono_sum_hears_is_lifted_too() -> None:
    # Centred sides (both channels alike) and an overlap whose middle 0.8 s goes wide (the channels
    # independent, each at the same power): a stereo meter hears no change, the mono sum loses 3 dB.
    rng = np.random.default_rng(8)
    before, after = (np.repeat(0.1 * rng.standard_normal((1, 3 * SR)), 2, axis=0) for _ in range(2))
    mix = np.repeat(0.1 * rng.standard_normal((1, 2 * SR)), 2, axis=0)
    mix[:, round(0.6 * SR) : round(1.4 * SR)] = 0.1 * rng.standard_normal((2, round(0.8 * SR)))
    before[:, SR] = 0.9  # a drum hit: the music's peaks leave room for the lift
    middle = slice(round(0.9 * SR), round(1.1 * SR))
    k_lost = 10 * np.log10(metered_power(before, SR).mean() / metered_power(mix, SR)[middle].mean())
    mono = metered_power(before, SR, "mono").mean() / metered_power(mix, SR, "mono")[middle].mean()
    mono_lost = 10 * np.log10(mono)
    assert abs(k_lost) < 0.5 and mono_lost == pytest.approx(3.0, abs=0.5)
    lift_db = 20 * np.log10(hold_level_gain(mix, before, after, SR))
    assert lift_db[SR] == pytest.approx(3.0, abs=0.6)  # held on the meter that hears the hole
    assert lift_db[round(0.2 * SR)] < 0.3  # the centred part is left as it is


def test_held_dip_is_what_the_hold_cannot_fill() -> None:
    # Two sides at one level whose overlap windows both go quiet in the middle: a 3 dB hole the hold
    # fills, a 10 dB one it lifts by its cap and no further.
    def side(depth_db: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        shape = np.ones(5 * SR)
        shape[round(3.6 * SR) : round(4.4 * SR)] = 10 ** (-depth_db / 20)
        prev = _noise(5.0, shape, seed)
        nxt = _noise(5.0, shape[::-1], seed + 1)  # its hole at 0.6-1.4 s
        return prev, nxt

    shallow, deep = side(3.0, 10), side(10.0, 12)
    n = 2 * SR
    assert held_dip(*shallow, 3 * SR, 0, n, SR) < 0.8
    assert held_dip(*deep, 3 * SR, 0, n, SR) == pytest.approx(10.0 - MAX_LIFT_DB, abs=1.2)


def test_peaks_stay_under_the_musics_own() -> None:
    before, after = _noise(3.0, 1.0, 2), _noise(3.0, 1.0, 3)
    mix = _hole(4.0)
    mix[:, SR] = 0.99 * max(np.abs(before).max(), np.abs(after).max())  # a peak in the hole
    held = hold_level(mix, before, after, SR)
    assert np.abs(held).max() <= max(np.abs(before).max(), np.abs(after).max()) + 1e-6


def test_render_transition_holds_the_level_only_when_the_plan_asks() -> None:
    # nxt opens softly (8 dB down for 1.2 s): as prev fades out, the overlap sinks 2.3 dB below both (400 ms levels).
    soft_intro = np.concatenate([_noise(1.2, 0.4, 6), _noise(6.8, 1.0, 7)], axis=1)
    prev, nxt = Audio(_noise(8.0, 1.0, 5), SR), Audio(soft_intro, SR)
    side = np.median(_levels_db(prev.samples[:, 3 * SR : 6 * SR]))
    levels = {}
    for hold in (True, False):
        options = TransitionOptions(beat_align=False, tempo_match=False, stem_aware=False, hold_level=hold)
        plan = plan_transition(prev, None, nxt, None, options)
        assert plan.hold_level is hold and plan.prev_start == 6 * SR
        overlap = render_transition(plan, prev, nxt)
        assert overlap.frames == plan.overlap_frames
        levels[hold] = _levels_db(overlap.samples)
    assert side - levels[False].min() > 2.0 and levels[True].min() > levels[False].min() + 1.5
    assert side - levels[True].min() < 0.7


def _level(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64))))


def test_the_incoming_segment_arrives_at_the_outgoing_level_and_glides_to_its_own() -> None:
    prev, nxt = Audio(_noise(10.0, 1.0, 8), SR), Audio(_noise(20.0, 10 ** (-5 / 20), 9), SR)  # nxt 5 dB down
    levels = {}
    for glide in (8.0, 0.0):
        options = TransitionOptions(
            beat_align=False, tempo_match=False, stem_aware=False, level_glide_seconds=glide
        )
        result = join_segments([prev, nxt], options)
        seam = result.transitions[0]
        stop = round((seam.overlap_start_time + seam.overlap_seconds) * SR)
        y = result.audio.samples
        levels[glide] = [
            _level(y[:, stop + round(a * SR) : stop + round(b * SR)]) for a, b in ((0, 1), (9, 12))
        ]
        assert seam.level_step_db == pytest.approx(5.0 if glide else 0.0, abs=0.1)
    before = _level(prev.samples[:, 6 * SR : 8 * SR])
    assert levels[0.0][0] == pytest.approx(before - 5.0, abs=0.3)  # without: the track steps down 5 dB
    assert levels[8.0][0] == pytest.approx(before, abs=0.6)  # with: it arrives at prev's level...
    assert levels[8.0][1] == pytest.approx(levels[0.0][1], abs=0.05)  # ...and is at its own 8 s later


def test_the_glide_splits_a_step_the_two_meters_disagree_on() -> None:
    # The incoming side goes wide (its channels independent) at the outgoing side's channel power: no
    # step K-weighted, 3 dB down on the mono sum. One gain cannot take out both; the midpoint leaves
    # each meter 1.5 dB.
    rng = np.random.default_rng(9)
    before = np.repeat(0.1 * rng.standard_normal((1, 3 * SR)), 2, axis=0)
    after = 0.1 * rng.standard_normal((2, 3 * SR))
    k, mono = (meter_step_db(before, after, SR, m) for m in ("k_weighted", "mono"))
    assert abs(k) < 0.3 and mono == pytest.approx(3.0, abs=0.3)
    assert level_step_db(before, after, SR) == pytest.approx((k + mono) / 2, abs=1e-9)


def test_glides_are_capped_chained_and_off_at_zero() -> None:
    segments = [_noise(10.0, 1.0, 10), _noise(10.0, 0.1, 11), _noise(10.0, 0.1, 12)]  # 20 dB down, then level
    options = TransitionOptions(beat_align=False, tempo_match=False, stem_aware=False)
    sides = [Audio(s, SR) for s in segments]
    plans = [plan_transition(sides[k], None, sides[k + 1], None, options) for k in range(2)]
    glides = level_glides(segments, plans, SR, 1.0)
    assert glides[0] is None and glides[1] is not None
    assert arrival_db(glides[1]) == pytest.approx(MAX_GLIDE_DB)
    assert glides[1][plans[0].next_stop + SR :].max() == 1.0
    # Seam 2's step is measured on segment 2 as glided: back at its own level 3 s before seam 2, level
    # with segment 3, so segment 3 arrives as it is.
    assert glides[2] is None
    # Still gliding there (6 s): segment 2 hands its raised level on to segment 3.
    assert 1.0 < arrival_db(level_glides(segments, plans, SR, 6.0)[2]) < MAX_GLIDE_DB
    assert level_glides(segments, plans, SR, 0.0) == [None, None, None]


def test_stems_take_the_same_gain_as_their_side() -> None:
    rng = np.random.default_rng(13)
    stems = [{k: (0.05 * rng.standard_normal((2, 8 * SR))).astype(np.float32) for k in ("bass", "drums", "other", "vocals")} for _ in range(2)]  # fmt: skip
    sides = [Audio(sum(s.values()), SR) for s in stems]
    options = TransitionOptions(beat_align=False, tempo_match=False, hold_level=False)
    plan = plan_transition(sides[0], None, sides[1], None, options)
    gains = (np.linspace(0.5, 1.5, 8 * SR), np.linspace(2.0, 1.0, 8 * SR))
    glided = render_transition(plan, sides[0], sides[1], stems[0], stems[1], gains=gains)
    scaled = [{k: v * g for k, v in s.items()} for s, g in zip(stems, gains, strict=True)]
    by_hand = render_transition(plan, *(with_gain(a, g) for a, g in zip(sides, gains, strict=True)), *scaled)
    assert plan.stem_aware and plan.bass_swap is not None
    np.testing.assert_allclose(glided.samples, by_hand.samples, atol=1e-5)


def test_the_seam_preview_hears_the_glide_the_mix_will_give() -> None:
    # The quality loop judges a fresh scene by `score_seam`: it must hear the seam the mix will make,
    # or it regenerates scenes for a level step the glide takes out.
    prev, nxt = Audio(_noise(10.0, 1.0, 14), SR), Audio(_noise(16.0, 10 ** (-8 / 20), 15), SR)  # 8 dB down
    options = TransitionOptions(beat_align=False, tempo_match=False, stem_aware=False)
    preview = score_seam(prev, nxt, options)
    joined = join_segments([prev, nxt], options).transitions[0].scores
    unglided = score_seam(prev, nxt, replace(options, level_glide_seconds=0.0))
    assert preview.energy_ratio == pytest.approx(joined.energy_ratio, rel=0.05)
    assert unglided.energy_ratio > 2.0 and preview.energy_ratio < 1.5
