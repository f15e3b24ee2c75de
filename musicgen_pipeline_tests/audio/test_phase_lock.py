"""Which beats of a grid carry the strong attacks (`phase_lock.beat_accents` / `strong_parity`): a grid
read at twice the felt tempo alternates strong beats with soft ones, and a seam must meet strong on strong."""

from __future__ import annotations

import numpy as np

from musicgen_pipeline.audio.phase_lock import beat_accents, strong_parity

SR = 22050


def _clicks(levels: list[float], period: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """A decaying 1 kHz click of each level, `period` s apart; (samples, beat frames)."""
    t = np.arange(round(0.04 * SR)) / SR
    click = np.exp(-t / 0.01) * np.sin(2 * np.pi * 1000.0 * t)
    beats = np.round((0.5 + period * np.arange(len(levels))) * SR).astype(np.int64)
    y = np.zeros(int(beats[-1]) + SR)
    for b, level in zip(beats, levels, strict=True):
        y[b : b + t.size] += level * click
    return y, beats


def test_the_loud_half_of_the_beats_is_found() -> None:
    y, beats = _clicks([0.2, 0.9] * 8)  # a soft hi-hat, then kick and snare: strong on odd beats
    assert strong_parity(beat_accents(y, SR, beats)) == 1
    y, beats = _clicks([0.9, 0.25] * 8)
    assert strong_parity(beat_accents(y, SR, beats)) == 0


def test_no_parity_where_every_beat_is_alike_or_too_few_beats() -> None:
    y, beats = _clicks([0.8, 0.6] * 8)  # an accented backbeat at the felt level: both halves strong
    assert strong_parity(beat_accents(y, SR, beats)) is None
    y, beats = _clicks([0.2, 0.9] * 3)
    assert strong_parity(beat_accents(y, SR, beats)) is None
    assert strong_parity(beat_accents(np.zeros(SR), SR, beats)) is None  # silence


def test_the_median_sees_the_alternation_through_a_fill() -> None:
    # Hi-hat / kick-snare alternation with a crash on two of the weak beats (a fill at a phrase's end):
    # the weak half's mean is lifted above a third of the strong half's, its median is not.
    levels = [0.2, 0.9] * 8
    levels[10] = levels[12] = 1.0
    y, beats = _clicks(levels)
    accents = beat_accents(y, SR, beats)
    assert strong_parity(accents) is None
    assert strong_parity(accents, median=True) == 1
