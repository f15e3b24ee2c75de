"""The four seam scores, their normalisation, and the click detector."""

from __future__ import annotations

import numpy as np
import pytest

from musicgen_pipeline.audio.io import Audio, resample
from musicgen_pipeline.audio.metrics import (
    QualityThresholds,
    TransitionScores,
    chroma_correlation,
    detect_clicks,
    energy_ratio,
    mfcc_similarity,
    score_transition,
)
from musicgen_pipeline.audio.synth import chord, note_hz, synth_song, tone

SR = 32000


@pytest.fixture(scope="module")
def song() -> Audio:
    return synth_song(120, 12.0, SR, seed=21, channels=2)


def _concat(a: Audio, b: Audio) -> Audio:
    return Audio(np.concatenate([a.samples, b.samples], axis=1), a.sample_rate)


def test_planted_click_is_found_at_its_time(song: Audio) -> None:
    assert detect_clicks(song) == []
    samples = song.samples.copy()
    at = round(5.13 * SR)  # between hi-hats
    samples[:, at] += 0.3
    found = detect_clicks(Audio(samples, SR))
    assert len(found) == 1 and found[0] == pytest.approx(5.13, abs=0.002)


def test_a_step_is_a_click(song: Audio) -> None:
    samples = song.samples.copy()
    samples[:, round(7.11 * SR) :] += 0.1  # a DC jump: what a bad cut sounds like
    found = detect_clicks(Audio(samples, SR))
    assert any(abs(t - 7.11) < 0.002 for t in found)


def test_hard_cut_between_tones_clicks_and_a_crossfade_does_not() -> None:
    a = tone(220.0, 2.0, SR, amplitude=0.5)
    b = tone(220.0, 2.0, SR, amplitude=0.5, phase=2.0)
    assert detect_clicks(_concat(a, b)) == [pytest.approx(2.0, abs=0.002)]
    fade = 640
    w = np.sin(0.5 * np.pi * (np.arange(fade) + 0.5) / fade)
    mixed = a.samples[:, -fade:] * w[::-1] + b.samples[:, :fade] * w
    joined = np.concatenate([a.samples[:, :-fade], mixed, b.samples[:, fade:]], axis=1)
    assert detect_clicks(Audio(joined, SR)) == []


def test_drums_and_noise_are_not_clicks() -> None:
    for bpm, seed in ((90, 1), (126, 2), (140, 3)):
        assert detect_clicks(synth_song(bpm, 6.0, SR, seed=seed, channels=2)) == []
    noise = np.random.default_rng(0).standard_normal((1, SR * 3)) * 0.1
    assert detect_clicks(Audio(noise, SR)) == []


def test_energy_ratio_is_the_rms_ratio() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal(SR) * 0.1
    assert energy_ratio(a, 2 * a) == pytest.approx(2.0)
    assert energy_ratio(2 * a, a) == pytest.approx(2.0)
    assert energy_ratio(a, a) == pytest.approx(1.0)
    assert energy_ratio(np.zeros(10), np.zeros(10)) == 1.0


def test_chroma_correlation_tracks_the_key() -> None:
    def triad(root: str) -> np.ndarray:
        f = note_hz(root, 4)
        return chord([f, f * 2 ** (4 / 12), f * 2 ** (7 / 12)], 3.0, SR).samples[0]

    assert chroma_correlation(triad("C"), triad("C"), SR) > 0.95
    assert chroma_correlation(triad("C"), triad("F#"), SR) < 0.0  # a tritone apart: no common notes


def test_mfcc_similarity_tracks_the_timbre(song: Audio) -> None:
    y = song.mono()
    assert mfcc_similarity(y[: 4 * SR], y[6 * SR : 10 * SR], SR) > 0.9
    rng = np.random.default_rng(2)
    hiss = np.convolve(rng.standard_normal(4 * SR), [1, -1], mode="same") * 0.05
    assert mfcc_similarity(y[: 4 * SR], hiss, SR) < 0.7


def _seam(song: Audio, other: Audio, start: float, seconds: float) -> tuple[Audio, int, int]:
    """Cut `song` at `start` and continue with `other`, crossfading over `seconds`."""
    a0, n = round(start * SR), round(seconds * SR)
    w = np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n)
    mixed = song.samples[:, a0 : a0 + n] * w[::-1] + other.samples[:, :n] * w
    joined = np.concatenate([song.samples[:, :a0], mixed, other.samples[:, n:]], axis=1)
    return Audio(joined, SR), a0, a0 + n


def test_spectral_flux_sees_unaligned_beats(song: Audio) -> None:
    aligned, s0, s1 = _seam(song, song.slice_seconds(4.0), 4.0, 2.0)  # continue on the beat: seamless
    period = 60 / 120
    off = song.slice_seconds(4.0 + 0.5 * period)  # continue half a beat off: doubled drums
    unaligned, u0, u1 = _seam(song, off, 4.0, 2.0)
    good = score_transition(aligned, s0, s1).spectral_flux
    bad = score_transition(unaligned, u0, u1).spectral_flux
    assert good < 6
    assert bad > 2 * good + 4


def test_spectral_flux_is_the_same_at_any_rate_and_level(song: Audio) -> None:
    noise = Audio(np.random.default_rng(3).standard_normal((2, 4 * SR)) * 0.2, SR)
    joined, s0, s1 = _seam(song, noise, 4.0, 0.1)  # an abrupt change of texture
    base = score_transition(joined, s0, s1).spectral_flux
    assert base > 20
    quiet = score_transition(Audio(joined.samples * 0.05, SR), s0, s1).spectral_flux
    assert quiet == pytest.approx(base, abs=0.5)
    for rate in (22050, 48000):
        other = resample(joined, rate)
        k0, k1 = round(s0 * rate / SR), round(s1 * rate / SR)
        assert score_transition(other, k0, k1).spectral_flux == pytest.approx(base, rel=0.2)


def test_scores_pass_and_fail_with_messages() -> None:
    t = QualityThresholds()
    good = TransitionScores(0.9, 10.0, 0.9, 1.2, t)
    assert good.passed and good.failures == [] and good.badness() == 0.0
    bad = TransitionScores(0.5, 150.0, 0.2, 3.0, t, clicks=(1.5,))
    assert not bad.passed
    assert len(bad.failures) == 5
    assert "MFCC similarity 0.500 is not above 0.7" in bad.failures
    assert bad.badness() > 0
    data = bad.to_dict()
    assert data["passed"] is False and data["thresholds"]["energy_ratio_max"] == 2.0
