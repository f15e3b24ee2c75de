"""The DSP stem split and windowed splitting: stems sum back to the mix, and land where they should."""

from __future__ import annotations

import numpy as np
import pytest

from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.audio.stems import (
    STEMS_4,
    DspStemSplitter,
    StemSplitter,
    split_window,
    with_residual_other,
)
from musicgen_pipeline.audio.synth import synth_song


@pytest.fixture(scope="module")
def song() -> tuple[Audio, dict[str, np.ndarray]]:
    return synth_song(120, 6.0, 32000, seed=11, channels=2, stems=True)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


def test_dsp_split_sums_to_mix_and_finds_the_parts(song: tuple[Audio, dict[str, np.ndarray]]) -> None:
    mix, truth = song
    splitter = DspStemSplitter()
    assert isinstance(splitter, StemSplitter)
    stems = splitter.split(mix.samples, mix.sample_rate)
    assert tuple(stems) == STEMS_4
    for value in stems.values():
        assert value.shape == mix.samples.shape and value.dtype == np.float32
    assert np.max(np.abs(sum(stems.values()) - mix.samples)) < 1e-4
    # Each estimate resembles its true stem more than any other stem.
    assert _corr(stems["bass"], truth["bass"]) > 0.75
    assert _corr(stems["drums"], truth["drums"]) > 0.75
    assert _corr(stems["other"], truth["other"]) > 0.85
    assert _corr(stems["other"], truth["other"]) > _corr(stems["other"], truth["drums"])


def test_dsp_split_of_very_short_audio() -> None:
    samples = np.random.default_rng(0).standard_normal((1, 300)).astype(np.float32)
    stems = DspStemSplitter().split(samples, 32000)
    assert np.max(np.abs(sum(stems.values()) - samples)) < 1e-5


class _RecordingSplitter:
    """Splits into a known function of the input and remembers what it was given."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def split(self, samples: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        self.calls.append(samples.shape[1])
        half = samples * 0.5
        return {
            "drums": half,
            "bass": half,
            "other": np.zeros_like(samples),
            "vocals": np.zeros_like(samples),
        }


def test_split_window_separates_only_the_window_plus_context(
    song: tuple[Audio, dict[str, np.ndarray]],
) -> None:
    mix, _ = song
    rec = _RecordingSplitter()
    stems = split_window(rec, mix, 32000, 64000, context=8000)
    assert rec.calls == [32000 + 2 * 8000]
    np.testing.assert_allclose(stems["drums"], mix.samples[:, 32000:64000] * 0.5, atol=1e-7)
    # At the edges the context is cut to what exists.
    split_window(rec, mix, 0, 1000, context=8000)
    assert rec.calls[-1] == 9000
    with pytest.raises(ValueError):
        split_window(rec, mix, 100, 50, context=0)


def test_split_window_stems_sum_to_the_window(song: tuple[Audio, dict[str, np.ndarray]]) -> None:
    mix, _ = song
    stems = split_window(DspStemSplitter(), mix, 40000, 104000, context=32000)
    assert np.max(np.abs(sum(stems.values()) - mix.samples[:, 40000:104000])) < 1e-4


def test_residual_other() -> None:
    mix = np.ones((1, 10), dtype=np.float32)
    stems = with_residual_other({"drums": mix * 0.2, "bass": mix * 0.3, "other": mix * 0.0}, mix)
    np.testing.assert_allclose(stems["other"], 0.5)
    two = with_residual_other({"vocals": mix * 0.25, "accompaniment": mix * 0.0}, mix)
    np.testing.assert_allclose(two["accompaniment"], 0.75)
    with pytest.raises(ValueError):
        with_residual_other({"drums": np.ones((1, 9))}, mix)
