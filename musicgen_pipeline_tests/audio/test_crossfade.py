"""Fade curves, snapping and the stem-aware crossfade, on signals with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from musicgen_pipeline.audio.crossfade import (
    adaptive_curves,
    correlation,
    crossfade,
    fade_curves,
    joint_zero_crossing_shift,
    micro_swap,
    nearest_zero_crossing,
    snap_to_beat,
    stem_aware_crossfade,
)


def _short_time_rms_db(y: np.ndarray, window: int) -> np.ndarray:
    n = y.size // window
    frames = y[: n * window].reshape(n, window)
    return 20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)))


def _noises(seconds: float = 4.0, sr: int = 32000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal(round(seconds * sr)) * 0.1
    b = rng.standard_normal(round(seconds * sr)) * 0.1
    return a, b


def test_equal_power_keeps_rms_of_uncorrelated_noise() -> None:
    sr = 32000
    a, b = _noises()
    mixed = crossfade(a, b, "equal_power")[0]
    edges = _short_time_rms_db(np.concatenate([a[: sr // 5], b[-sr // 5 :]]), sr // 10).mean()
    # 100 ms windows through the whole 4 s overlap (shorter ones measure the noise's own
    # fluctuation: +-0.15 dB per 50 ms window for white noise).
    through = _short_time_rms_db(mixed, sr // 10)
    assert np.max(np.abs(through - edges)) < 0.5


def test_linear_fade_dips_about_3_db() -> None:
    sr = 32000
    a, b = _noises()
    mixed = crossfade(a, b, "linear")[0]
    edges = _short_time_rms_db(a[: sr // 5], sr // 20).mean()
    middle = mixed[mixed.size // 2 - sr // 20 : mixed.size // 2 + sr // 20]
    dip = edges - _short_time_rms_db(middle, middle.size)[0]
    assert dip == pytest.approx(3.0, abs=0.5)


def test_curves() -> None:
    out, inn = fade_curves(1000)
    np.testing.assert_allclose(out**2 + inn**2, 1.0, atol=1e-12)
    assert out[0] > 0.999 and inn[-1] > 0.999 and out[-1] < 0.002
    lo, li = fade_curves(1000, "linear")
    np.testing.assert_allclose(lo + li, 1.0)
    with pytest.raises(ValueError):
        fade_curves(10, "cubic")
    with pytest.raises(ValueError):
        crossfade(np.zeros((1, 10)), np.zeros((1, 11)))


def test_nearest_zero_crossing() -> None:
    sr = 32000
    t = np.arange(sr) / sr
    y = np.sin(2 * np.pi * 100 * t)  # zero crossings every 160 samples
    i = nearest_zero_crossing(y, 1000, radius=200)
    assert i in (960, 1120)
    assert abs(y[i]) < 0.01
    assert nearest_zero_crossing(np.ones(100), 50, radius=10) in range(40, 61)


def test_joint_shift_keeps_alignment_and_finds_zeros() -> None:
    sr = 32000
    t = np.arange(sr) / sr
    a = np.sin(2 * np.pi * 50 * t)  # both zero every 320 samples, same phase
    b = np.sin(2 * np.pi * 50 * t + 0.0)
    s = joint_zero_crossing_shift(a, 1000, b, 1000, radius=200)
    assert abs(a[1000 + s]) < 0.01 and abs(b[1000 + s]) < 0.01
    assert abs(s) <= 200


def test_snap_to_beat() -> None:
    beats = np.array([0.0, 0.5, 1.0, 1.5])
    assert snap_to_beat(0.93, beats, 0.1) == 1.0
    assert snap_to_beat(0.75, beats, 0.1) == 0.75
    assert snap_to_beat(0.75, np.array([]), 0.1) == 0.75


def test_micro_swap_has_no_step() -> None:
    sr = 32000
    t = np.arange(sr) / sr
    a = np.sin(2 * np.pi * 55 * t)[None, :]
    b = np.sin(2 * np.pi * 82.5 * t + 1.3)[None, :]
    at, fade = 16000, 128
    out = micro_swap(a, b, at, fade)
    assert np.array_equal(out[:, : at - 64], a[:, : at - 64].astype(np.float32))
    assert np.array_equal(out[:, at + 64 :], b[:, at + 64 :].astype(np.float32))
    # Largest sample-to-sample change stays that of the two sines (no jump at the swap).
    assert np.max(np.abs(np.diff(out[0]))) < 1.2 * max(
        np.abs(np.diff(a[0])).max(), np.abs(np.diff(b[0])).max()
    )
    hard = np.where(np.arange(sr) < at, a[0], b[0])
    assert np.max(np.abs(np.diff(hard))) > 10 * np.abs(np.diff(a[0])).max()


def test_stem_aware_crossfade_swaps_bass_and_crosses_the_rest() -> None:
    n, at = 3200, 1600
    rng = np.random.default_rng(1)
    prev = {k: rng.standard_normal((2, n)).astype(np.float32) for k in ("drums", "bass", "other")}
    nxt = {k: rng.standard_normal((2, n)).astype(np.float32) for k in ("drums", "bass", "other")}
    out = stem_aware_crossfade(prev, nxt, swap_at=at, micro_fade=64)
    fo, fi = fade_curves(n)
    expected_rest = sum(prev[k] * fo + nxt[k] * fi for k in ("drums", "other"))
    bass = out - expected_rest
    # One bass line at a time, each levelled to the crossfade's bass band (equal levels: gains ~1).
    from musicgen_pipeline.audio.crossfade import bass_swap_gains

    gain_a, gain_b = bass_swap_gains(prev["bass"], nxt["bass"])
    assert np.all(np.abs(gain_a - 1) < 0.05) and np.all(np.abs(gain_b - 1) < 0.05)
    np.testing.assert_allclose(bass[:, : at - 32], (prev["bass"] * gain_a)[:, : at - 32], atol=1e-5)
    np.testing.assert_allclose(bass[:, at + 32 :], (nxt["bass"] * gain_b)[:, at + 32 :], atol=1e-5)
    # Without a swap point every stem crosses.
    plain = stem_aware_crossfade(prev, nxt, swap_at=None, micro_fade=64)
    np.testing.assert_allclose(plain, sum(prev[k] * fo + nxt[k] * fi for k in prev), atol=1e-5)
    with pytest.raises(ValueError):
        stem_aware_crossfade(prev, {"drums": nxt["drums"]}, swap_at=at, micro_fade=64)


@pytest.mark.parametrize("louder", ["incoming", "outgoing"])
def test_bass_swap_keeps_the_bass_bands_level(louder: str) -> None:
    # Two bass lines 6 dB apart (the realistic ballad pair's incoming bass is 10 dB louder). A swap at
    # full gain leaves the band at the outgoing line's level up to the swap: 3 dB short of what the
    # crossfade gives at 40 % of the overlap when the incoming line is the louder one (a dip in the
    # seam), 3 dB over after the swap the other way round. Levelled, the band follows the crossfade.
    sr, n = 32000, 64000
    t = np.arange(n) / sr
    quiet, loud = 0.1 * np.sin(2 * np.pi * 55 * t)[None, :], 0.2 * np.sin(2 * np.pi * 73.4 * t)[None, :]
    a, b = (quiet, loud) if louder == "incoming" else (loud, quiet)
    rng = np.random.default_rng(3)
    rest_a, rest_b = (0.05 * rng.standard_normal((1, n)) for _ in range(2))
    at = n // 2
    out = stem_aware_crossfade({"bass": a, "other": rest_a}, {"bass": b, "other": rest_b}, at, 128)
    fo, fi = fade_curves(n)
    band = out - (rest_a * fo + rest_b * fi)
    win = sr // 10
    for start in range(0, n - win + 1, win):
        if abs(start + win // 2 - at) < win:
            continue  # the micro-fade at the swap
        w = slice(start, start + win)
        want = np.mean((a[0, w] * fo[w]) ** 2 + (b[0, w] * fi[w]) ** 2)
        got = np.mean(band[0, w] ** 2)
        assert abs(10 * np.log10(got / want)) < 0.5, (start / sr, 10 * np.log10(got / want))
    # Never both lines at once: before the swap only a's pitch, after it only b's.
    head, tail = slice(0, at - 64), slice(at + 64, n)
    assert (
        correlation(band[:, head], a[:, head]) > 0.95 and abs(correlation(band[:, head], b[:, head])) < 0.02
    )
    assert (
        correlation(band[:, tail], b[:, tail]) > 0.95 and abs(correlation(band[:, tail], a[:, tail])) < 0.02
    )


def test_adaptive_curve_keeps_level_of_correlated_and_uncorrelated_material() -> None:
    sr = 32000
    a, b = _noises()
    edges = _short_time_rms_db(a[: sr // 5], sr // 20).mean()
    # The same material on both sides: equal power bumps by ~3 dB in the middle, adaptive does not.
    same_ep = crossfade(a, a, "equal_power")[0]
    same_ad = crossfade(a, a, "adaptive")[0]
    mid = slice(a.size // 2 - sr // 20, a.size // 2 + sr // 20)
    assert _short_time_rms_db(same_ep[mid], sr // 10)[0] - edges == pytest.approx(3.0, abs=0.5)
    assert np.max(np.abs(_short_time_rms_db(same_ad, sr // 20) - edges)) < 0.5
    # Uncorrelated material: adaptive is the equal-power crossfade.
    np.testing.assert_allclose(crossfade(a, b, "adaptive"), crossfade(a, b, "equal_power"), atol=2e-3)
    out, inn = adaptive_curves(100, 1.0)
    np.testing.assert_allclose(out + inn, 1.0, atol=1e-12)
    assert correlation(a, a) == pytest.approx(1.0) and abs(correlation(a, b)) < 0.02
    assert correlation(a, np.zeros_like(a)) == 0.0
