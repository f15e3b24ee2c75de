"""The synthetic music every other test trusts: deterministic, beats where they are said to be, stems exact."""

from __future__ import annotations

import numpy as np
import pytest

from musicgen_pipeline.audio.stems import STEMS_4
from musicgen_pipeline.audio.synth import beat_times, chord, click_track, note_hz, synth_song, tone


def test_note_frequencies() -> None:
    assert note_hz("A", 4) == pytest.approx(440.0)
    assert note_hz("C", 4) == pytest.approx(261.6256, rel=1e-5)
    assert note_hz("C#", 4) == pytest.approx(note_hz("Db", 4))
    with pytest.raises(ValueError):
        note_hz("H", 4)


def test_beat_times_ground_truth() -> None:
    np.testing.assert_allclose(beat_times(120, 2.0), [0.0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(beat_times(90, 2.0, offset=0.1), [0.1, 0.1 + 2 / 3, 0.1 + 4 / 3])


def test_tone_frequency_and_level() -> None:
    t = tone(440.0, 1.0, 32000, amplitude=0.5)
    assert t.samples.shape == (1, 32000)
    spectrum = np.abs(np.fft.rfft(t.samples[0]))
    assert np.argmax(spectrum) == 440  # 1 Hz bins for a 1 s signal
    assert np.max(np.abs(t.samples)) == pytest.approx(0.5, rel=1e-3)


def test_chord_contains_its_notes() -> None:
    c = chord([220.0, 277.18, 329.63], 1.0, 32000, harmonics=1)
    spectrum = np.abs(np.fft.rfft(c.samples[0]))
    peaks = sorted(np.argsort(spectrum)[-3:])
    assert peaks == [220, 277, 330]


def test_click_track_clicks_on_the_beats() -> None:
    sr = 32000
    audio = click_track(120, 4.0, sr)
    y = np.abs(audio.samples[0])
    for beat in beat_times(120, 4.0):
        i = round(beat * sr)
        assert y[i : i + 320].max() > 0.3  # loud within 10 ms of the beat
        assert y[i + round(0.2 * sr) : i + round(0.45 * sr)].max() < 1e-6  # silent between clicks


def test_synth_song_is_deterministic_and_seeded() -> None:
    a = synth_song(120, 3.0, seed=7)
    b = synth_song(120, 3.0, seed=7)
    c = synth_song(120, 3.0, seed=8)
    assert np.array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, c.samples)


@pytest.mark.parametrize("channels", [1, 2])
def test_synth_song_stems_sum_to_mix(channels: int) -> None:
    mix, stems = synth_song(118, 4.0, seed=1, channels=channels, stems=True)
    assert tuple(stems) == STEMS_4
    assert mix.channels == channels
    total = sum(stems.values())
    assert np.max(np.abs(total - mix.samples)) < 1e-6
    assert np.max(np.abs(mix.samples)) == pytest.approx(0.8, rel=1e-3)
    assert not np.any(stems["vocals"])
    # The bass stem is low: nearly all its energy under 200 Hz.
    spec = np.abs(np.fft.rfft(stems["bass"][0])) ** 2
    freqs = np.fft.rfftfreq(stems["bass"].shape[1], 1 / 32000)
    assert spec[freqs < 200].sum() / spec.sum() > 0.95


def test_synth_song_kicks_on_the_beats() -> None:
    sr = 32000
    _, stems = synth_song(126, 4.0, sr, seed=3, stems=True)
    drums = np.abs(stems["drums"][0])
    period = round(60 / 126 * sr)
    for beat in beat_times(126, 4.0)[:-1]:
        i = round(beat * sr)
        on = drums[i : i + round(0.03 * sr)].max()
        before = drums[max(0, i - round(0.1 * sr)) : max(1, i - round(0.02 * sr))]
        assert on > 0.2
        if i > period:
            assert on > 3 * before.max()
