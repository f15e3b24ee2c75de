"""segment_stems separates each seam window with the splitter's own exact windowed mode when it has one
(Demucs: equal to whole-segment separation over the window), else with the generic context window."""

from __future__ import annotations

import numpy as np
import pytest

from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.audio.stems import DspStemSplitter, split_window
from musicgen_pipeline.audio.synth import synth_song
from musicgen_pipeline.defs.assets.segment_stems import separate_window

SR = 32000


@pytest.fixture(scope="module")
def song() -> Audio:
    return synth_song(120, 8.0, SR, root="A", seed=5, channels=2)


def test_demucs_window_equals_whole_segment_separation(song: Audio) -> None:
    from musicgen_pipeline.models.demucs import get_separator

    sep = get_separator("tiny-random")
    start, stop = round(3.1 * SR), round(4.6 * SR)
    window = separate_window(sep, song, start, stop, context=SR)
    whole = sep.split(song.samples, SR)
    assert set(window) == set(whole)
    for name in ("drums", "bass", "vocals"):
        np.testing.assert_allclose(window[name], whole[name][:, start:stop], atol=1e-4)
    np.testing.assert_allclose(sum(window.values()), song.samples[:, start:stop], atol=1e-5)
    # the generic context window does not reproduce whole-segment Demucs stems
    generic = split_window(sep, song, start, stop, SR)
    assert max(np.abs(generic[n] - whole[n][:, start:stop]).max() for n in ("drums", "bass")) > 1e-4


def test_splitters_without_a_window_mode_use_the_generic_one(song: Audio) -> None:
    start, stop = SR, 2 * SR
    got = separate_window(DspStemSplitter(), song, start, stop, context=SR // 2)
    want = split_window(DspStemSplitter(), song, start, stop, SR // 2)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


def test_a_splitter_window_method_is_called_in_exact_mode(song: Audio) -> None:
    calls: list[tuple[int, int, str]] = []

    class Windowed(DspStemSplitter):
        def split_window(self, samples, sample_rate, start, stop, *, mode="centered"):  # type: ignore[no-untyped-def]
            calls.append((start, stop, mode))
            return {"other": samples[:, start:stop]}

    out = separate_window(Windowed(), song, 100, 900, context=50)
    assert calls == [(100, 900, "exact")]
    assert out["other"].shape == (2, 800)
