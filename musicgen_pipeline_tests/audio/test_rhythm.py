"""Tempo, beats, octaves and tempo matching against signals whose tempo and beats are known."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.audio.rhythm import (
    ANALYSIS_RATE,
    HOP,
    BeatGrid,
    _choose_metrical_level,
    align_segment,
    analyze_beats,
    beat_f_measure,
    choose_target_bpm,
    octave_ratio,
    stretch_to_tempo,
)
from musicgen_pipeline.audio.synth import beat_times, click_track, synth_song, tone
from musicgen_pipeline_tests.realistic_music import PAIRS, RealisticSong


@pytest.mark.parametrize("bpm", [90, 120, 140])
def test_click_track_tempo_and_beats(bpm: float) -> None:
    audio = click_track(bpm, 12.0, 32000)
    grid = analyze_beats(audio)
    assert grid.bpm == pytest.approx(bpm, rel=0.02)
    assert beat_f_measure(grid.beat_times, beat_times(bpm, 12.0), window=0.07) >= 0.9


@pytest.mark.parametrize("bpm", [118, 126])
def test_song_tempo_and_beats(bpm: float) -> None:
    audio = synth_song(bpm, 12.0, 32000, seed=bpm, channels=2)
    grid = analyze_beats(audio)
    assert grid.bpm == pytest.approx(bpm, rel=0.01)
    truth = beat_times(bpm, 12.0)
    assert beat_f_measure(grid.beat_times, truth, window=0.07) >= 0.95
    # Beats land on the attacks, not 10-20 ms after them (what the onset envelope alone gives).
    errors = np.array([np.min(np.abs(grid.beat_times - t)) for t in truth])
    assert np.median(errors) < 0.005


def test_beat_times_are_relative_to_the_audio_start() -> None:
    grid = analyze_beats(click_track(120, 8.0, 32000, offset=0.21))
    assert beat_f_measure(grid.beat_times, beat_times(120, 8.0, offset=0.21), window=0.03) >= 0.9


def test_silence_and_tones_have_no_pulse() -> None:
    assert analyze_beats(Audio(np.zeros((1, 32000 * 3)), 32000)).bpm == 0.0
    assert len(analyze_beats(Audio(np.zeros((1, 100)), 32000))) == 0


def test_f_measure() -> None:
    ref = np.arange(10) * 0.5
    assert beat_f_measure(ref, ref) == 1.0
    assert beat_f_measure(ref + 0.1, ref) == 0.0
    assert beat_f_measure(ref[::2], ref) == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert beat_f_measure(np.array([]), ref) == 0.0


def test_octave_ratio_never_doubles() -> None:
    assert octave_ratio(60, 120) == (1.0, 2.0)
    assert octave_ratio(240, 120) == (1.0, 0.5)
    rate, octave = octave_ratio(63, 120)
    assert octave == 2.0 and rate == pytest.approx(120 / 126)
    assert octave_ratio(118, 126)[0] == pytest.approx(126 / 118)


def test_half_tempo_segment_is_not_stretched_2x() -> None:
    """A 60 BPM pulse matched to 120 BPM needs no stretch (same pulse, other octave)."""
    audio = click_track(60, 8.0, 32000)
    grid = BeatGrid(60.0, beat_times(60, 8.0), 8.0)
    out, new_grid = align_segment(audio, grid, 120.0)
    assert out is audio
    assert new_grid.bpm == pytest.approx(120.0)
    assert len(new_grid) == 2 * len(grid) - 1  # counted at the target's level


def test_choose_target_bpm() -> None:
    grids = [BeatGrid(0.0, []), BeatGrid(118.0, [0.0]), BeatGrid(63.0, [0.0]), BeatGrid(130.0, [0.0])]
    assert choose_target_bpm(grids) == 118.0
    assert choose_target_bpm(grids, "median") == pytest.approx(126.0)  # 63 counts as 126
    assert choose_target_bpm([None, BeatGrid(0.0, [])]) == 0.0
    with pytest.raises(ValueError):
        choose_target_bpm(grids, "loudest")


def _dominant_hz(y: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size), n=8 * y.size))
    k = int(np.argmax(spec))
    return k * sr / (8 * y.size)


def test_stretch_118_to_126_keeps_pitch() -> None:
    sr = 32000
    loop = synth_song(118, 10.0, sr, seed=4)
    pitch = tone(330.0, 10.0, sr, amplitude=0.3)  # a held note to measure the pitch on
    source = Audio(loop.samples + pitch.samples, sr)
    out = stretch_to_tempo(source, 118.0, 126.0)
    assert out.duration == pytest.approx(10.0 * 118 / 126, rel=0.005)
    assert analyze_beats(out).bpm == pytest.approx(126.0, rel=0.01)
    before = _dominant_hz(source.samples[0, sr : 3 * sr], sr)
    after = _dominant_hz(out.samples[0, sr : 3 * sr], sr)
    assert before == pytest.approx(330.0, rel=0.005)
    assert after == pytest.approx(before, rel=0.01)


def test_align_segment_scales_grid() -> None:
    sr = 32000
    audio = synth_song(126, 8.0, sr, seed=5)
    grid = analyze_beats(audio)
    out, new_grid = align_segment(audio, grid, 118.0)
    assert new_grid.bpm == pytest.approx(118.0, rel=1e-6)
    assert out.duration == pytest.approx(8.0 * 126 / 118, rel=0.01)
    measured = analyze_beats(out)
    assert beat_f_measure(measured.beat_times, new_grid.beat_times, window=0.02) >= 0.9


def test_too_big_a_change_is_not_applied() -> None:
    audio = click_track(90, 4.0, 32000)
    grid = BeatGrid(90.0, beat_times(90, 4.0), 4.0)
    out, new_grid = align_segment(audio, grid, 130.0)  # +44 %: would sound worse than a mismatch
    assert out is audio and new_grid is grid


def test_grid_round_trip() -> None:
    grid = BeatGrid(121.5, [0.1, 0.6, 1.1], 3.0)
    again = BeatGrid.from_dict(grid.to_dict())
    assert again.bpm == grid.bpm and np.allclose(again.beat_times, grid.beat_times)
    assert grid.nearest_beat(0.58) == pytest.approx(0.6)
    assert grid.nearest_beat(0.35, window=0.1) is None
    assert grid.scaled(2.0).beat_times.tolist() == pytest.approx([0.05, 0.3, 0.55])


def test_tempo_drift_is_followed_not_straightened() -> None:
    """A click track accelerating 110 -> 120 BPM over 30 s: every beat found where it is (a straight
    grid fitted to the whole would be off by up to a quarter beat at the ends)."""
    sr = 32000
    duration = 30.0
    truth = [0.0]
    while True:
        bpm = 110 + 10 * truth[-1] / duration
        if truth[-1] + 60 / bpm >= duration - 0.1:
            break
        truth.append(truth[-1] + 60 / bpm)
    click = click_track(120, 0.5, sr).samples[0, : round(0.03 * sr)]
    y = np.zeros(round(duration * sr))
    for t in truth:
        i = round(t * sr)
        y[i : i + click.size] += click[: y.size - i]
    grid = analyze_beats(Audio(y, sr))
    assert beat_f_measure(grid.beat_times, np.array(truth), window=0.07) >= 0.98
    errors = np.array([np.min(np.abs(grid.beat_times - t)) for t in truth])
    assert errors.max() < 0.01
    assert grid.bpm == pytest.approx(115, rel=0.02)  # the average tempo


def _onsets(seconds: float, events: list[tuple[float, float]]) -> np.ndarray:
    """An onset envelope at the tracker's frame rate: a 3-frame bump of each (time, strength)."""
    rate = ANALYSIS_RATE / HOP
    env = np.full(round(seconds * rate), 0.02)
    for t, strength in events:
        i = round(t * rate)
        if 1 <= i < env.size - 1:
            env[i - 1 : i + 2] += strength * np.array([0.5, 1.0, 0.5])
    return env


def _groove_140(seconds: float) -> list[tuple[float, float]]:
    """A 140 BPM rock bar: kick/snare on every beat, hi-hat eighths, a chord push on the "and" of 3."""
    p = 60.0 / 140
    events = []
    for k in range(int(seconds / p)):
        events += [(k * p, 1.0), (k * p + p / 2, 0.3)]
        if k % 4 == 2:
            events.append((k * p + p / 2, 0.9))
    return events


def _hats_3_against_2(seconds: float) -> list[tuple[float, float]]:
    """A 93.3 BPM pulse (a kick on every beat) under a hi-hat every 2/3 of a beat: 3 against 2, a
    140 BPM pulse of soft attacks that meets a kick only every third of its beats."""
    p = 60.0 / 93.33
    events = [(k * p, 1.0) for k in range(int(seconds / p))]
    events += [(k * p * 2 / 3, 0.375) for k in range(int(seconds / (p * 2 / 3)))]
    return events


@pytest.mark.parametrize(
    ("events", "read_as", "expected"),
    [
        (_groove_140, 140 * 2 / 3, 140.0),  # x3/2: the tempogram's 3:2 relative of a 140 groove
        (_groove_140, 140.0, 140.0),  # read right: stays
        (_hats_3_against_2, 140.0, 93.33),  # x2/3: the hats' 140 pulse
        (_hats_3_against_2, 93.33, 93.33),  # read right: stays
        (_hats_3_against_2, 93.96, 93.96),  # read 0.7 % off (a tempogram bin): stays
        (_groove_140, 141.0, 141.0),  # read 0.7 % off: stays
    ],
)
def test_metrical_level_moves_a_3_2_reading_onto_the_attacks(
    events: Callable[[float], list[tuple[float, float]]], read_as: float, expected: float
) -> None:
    onset = _onsets(16.0, events(16.0))
    assert _choose_metrical_level(onset, read_as) == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize(("hats", "tempogram_reads"), [(0.375, 140.0), (0.25, 93.33)])
def test_hats_3_against_2_do_not_make_a_93_bpm_pulse_140(hats: float, tempogram_reads: float) -> None:
    """End to end: librosa's tempogram reads a 93.3 BPM kick under hi-hats 3 against 2 as the hats'
    140 BPM (x2/3 moves it back), or, with softer hats, right (~94, 0.7 % off: nothing may move it to
    140); the beat is where the strong attacks are."""
    import librosa

    sr = 22050
    t = np.arange(round(0.03 * sr)) / sr
    y = np.zeros(16 * sr)
    for time, level in _hats_3_against_2(15.9):
        strength = level if level > 0.5 else hats
        click = strength * np.exp(-t / 0.006) * np.sin(2 * np.pi * (1000.0 if strength > 0.5 else 4000.0) * t)
        i = round(time * sr)
        y[i : i + t.size] += 0.8 * click
    y = y.astype(np.float32)
    onset = librosa.onset.onset_strength(y=y, sr=sr, hop_length=HOP, aggregate=np.median)
    tempogram = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=HOP))[0])
    assert tempogram == pytest.approx(tempogram_reads, rel=0.02)  # the reading this case is about
    assert analyze_beats(Audio(y, sr)).bpm == pytest.approx(93.33, rel=0.01)


def test_a_140_bpm_clip_is_not_read_as_94(render_song: Callable[[RealisticSong], Audio]) -> None:
    """End to end (x3/2), realistic: the dance pair's 140 BPM rock clip, whose chord push on the "and"
    of 3 makes librosa's tempogram read ~94 BPM (every 1.5 beats)."""
    import librosa

    song = PAIRS["140-128 dance"][0]
    clip = render_song(song)
    y = clip.mono()
    if clip.sample_rate != ANALYSIS_RATE:
        y = librosa.resample(y, orig_sr=clip.sample_rate, target_sr=ANALYSIS_RATE)
    onset = librosa.onset.onset_strength(y=y, sr=ANALYSIS_RATE, hop_length=HOP, aggregate=np.median)
    tempogram = float(
        np.atleast_1d(librosa.feature.tempo(onset_envelope=onset, sr=ANALYSIS_RATE, hop_length=HOP))[0]
    )
    assert tempogram == pytest.approx(song.bpm * 2 / 3, rel=0.03)
    assert analyze_beats(clip).bpm == pytest.approx(song.bpm, rel=0.01)
