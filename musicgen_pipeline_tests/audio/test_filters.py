"""DC removal: offsets and drift go, music stays, beats do not move."""

from __future__ import annotations

import numpy as np

from musicgen_pipeline.audio.filters import remove_dc
from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.audio.synth import click_track

SR = 32000


def _rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x)))))


def test_static_offset_is_removed_and_tones_are_kept() -> None:
    t = np.arange(4 * SR) / SR
    tone = 0.2 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 55 * t)
    out = remove_dc(Audio(np.stack([tone - 0.7, tone + 0.3]), SR))
    assert np.abs(out.samples.mean(axis=1)).max() < 1e-3
    middle = slice(SR, 3 * SR)  # away from the filter's edges
    for ch in range(2):
        assert abs(_rms_db(out.samples[ch, middle]) - _rms_db(tone[middle])) < 0.3


def test_slow_drift_is_attenuated_by_more_than_40_db() -> None:
    t = np.arange(10 * SR) / SR
    drift = 0.3 * np.sin(2 * np.pi * 0.5 * t)
    out = remove_dc(Audio(drift, SR))
    middle = slice(2 * SR, 8 * SR)
    assert _rms_db(out.samples[0, middle]) < _rms_db(drift[middle]) - 40


def test_zero_phase_keeps_click_positions() -> None:
    clicks = click_track(120, 4.0, SR)
    out = remove_dc(Audio(clicks.samples + 0.5, SR))
    for beat in (0.5, 1.0, 2.5):  # peaks of the clicks on these beats, before and after
        window = slice(round(beat * SR) - 100, round(beat * SR) + 600)
        peak_in = int(np.argmax(np.abs(clicks.samples[0, window])))
        peak_out = int(np.argmax(np.abs(out.samples[0, window])))
        assert abs(peak_out - peak_in) <= 2  # zero phase: no shift beyond 2 samples (0.06 ms)


def test_very_short_audio_only_loses_its_mean() -> None:
    out = remove_dc(Audio(np.full((1, 5), 0.25, dtype=np.float32), SR))
    assert np.allclose(out.samples, 0.0, atol=1e-7)
