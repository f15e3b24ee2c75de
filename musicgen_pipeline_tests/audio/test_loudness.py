"""BS.1770 loudness, true peak and normalisation, against signals with known loudness."""

from __future__ import annotations

import math

import numpy as np
import pytest

from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.audio.loudness import (
    integrated_loudness,
    normalize_loudness,
    sample_peak_dbfs,
    true_peak,
    true_peak_db,
)
from musicgen_pipeline.audio.synth import synth_song, tone

SR = 48000


def test_sine_loudness_matches_bs1770() -> None:
    # BS.1770: a 997 Hz sine at 0 dBFS peak in one channel reads -3.01 LUFS.
    audio = tone(997.0, 5.0, SR, amplitude=1.0)
    assert integrated_loudness(audio) == pytest.approx(-3.01, abs=0.1)
    assert integrated_loudness(tone(997.0, 5.0, SR, amplitude=0.1)) == pytest.approx(-23.01, abs=0.1)


def test_silence_and_short_audio() -> None:
    assert integrated_loudness(Audio(np.zeros((1, SR)), SR)) == -math.inf
    short = tone(997.0, 0.2, SR, amplitude=0.5)  # shorter than one 400 ms block
    assert math.isfinite(integrated_loudness(short))


def test_true_peak_finds_inter_sample_peaks() -> None:
    # A sine at fs/4 sampled 45 degrees off its peaks: samples read 0.707, the waveform reaches 1.0.
    n = np.arange(SR)
    y = np.sin(2 * np.pi * (SR / 4) * n / SR + np.pi / 4)[None, :]
    audio = Audio(y, SR)
    assert sample_peak_dbfs(audio) == pytest.approx(-3.01, abs=0.05)
    assert true_peak(audio) == pytest.approx(1.0, abs=0.02)
    assert true_peak_db(audio) == pytest.approx(0.0, abs=0.2)


@pytest.mark.parametrize("target", [-14.0, -9.0, -23.0])
def test_normalize_lands_on_target_under_ceiling(target: float) -> None:
    audio = synth_song(120, 8.0, 32000, seed=5, channels=2)
    out, result = normalize_loudness(audio, target_lufs=target, true_peak_dbtp=-1.0)
    assert integrated_loudness(out) == pytest.approx(target, abs=0.5)
    assert true_peak_db(out) <= -1.0
    assert result.output_lufs == pytest.approx(integrated_loudness(out))
    assert result.to_dict()["limited"] == (target > -18)


def test_limiter_does_not_distort_quiet_parts() -> None:
    # One loud burst in a quiet tone: the tone far from the burst keeps its exact shape (gain only).
    audio = tone(440.0, 6.0, 32000, amplitude=0.05)
    samples = audio.samples.copy()
    samples[:, 3 * 32000 : 3 * 32000 + 320] += 0.9 * np.hanning(320)
    out, result = normalize_loudness(Audio(samples, 32000), target_lufs=-14.0, true_peak_dbtp=-1.0)
    assert result.limited and true_peak_db(out) <= -1.0
    gain = out.samples[0, : 2 * 32000] / np.where(samples[0, : 2 * 32000] == 0, 1, samples[0, : 2 * 32000])
    nonzero = np.abs(samples[0, : 2 * 32000]) > 0.01
    assert np.ptp(gain[nonzero]) < 1e-3


def test_silence_is_left_alone() -> None:
    silent = Audio(np.zeros((2, SR)), SR)
    out, result = normalize_loudness(silent)
    assert out is silent and result.gain_db == 0.0
