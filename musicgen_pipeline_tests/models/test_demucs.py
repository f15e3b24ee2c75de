"""Demucs separator on tiny-random HTDemucs: shapes, residual sums, two stems, windowed == whole."""

from __future__ import annotations

import numpy as np
import pytest

from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.audio.stems import STEMS_4, StemSplitter
from musicgen_pipeline.models.demucs import get_separator

pytestmark = pytest.mark.slow
SR = 32_000


@pytest.fixture(scope="module")
def sep():
    return get_separator("tiny-random")


@pytest.fixture(scope="module")
def mix() -> np.ndarray:
    """14 s stereo: a bass tone, a chord, and noise bursts (drum-like) every 0.5 s."""
    t = np.arange(SR * 14) / SR
    rng = np.random.default_rng(0)
    bass = 0.3 * np.sin(2 * np.pi * 55 * t)
    chord = 0.1 * sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0))
    hits = (np.mod(t, 0.5) < 0.03) * rng.standard_normal(t.size) * 0.4
    left = bass + chord + hits
    return np.stack([left, 0.8 * left + 0.05 * chord]).astype(np.float32)


@pytest.fixture(scope="module")
def whole(sep, mix):
    return sep.split(mix, SR)


def test_is_a_stem_splitter(sep):
    assert isinstance(sep, StemSplitter)
    assert sep.name == "demucs:tiny-random" and sep.load_seconds >= 0


def test_stems_have_mix_shape_and_sum_to_it(whole, mix):
    assert tuple(whole) == STEMS_4
    for stem in whole.values():
        assert stem.shape == mix.shape and stem.dtype == np.float32
    assert np.abs(sum(whole.values()) - mix).max() < 1e-4
    assert all(np.abs(whole[n]).max() > 0 for n in ("drums", "bass", "vocals"))


def test_separate_returns_audio_at_input_rate_mono_too(sep, mix):
    mono = Audio(mix[:1, : SR * 3], SR)
    stems = sep.separate(mono)
    assert set(stems) == set(STEMS_4)
    for stem in stems.values():
        assert stem.sample_rate == SR and stem.samples.shape == (1, SR * 3)
    assert np.abs(sum(s.samples for s in stems.values()) - mono.samples).max() < 1e-4


def test_two_stem_mode_sums_to_mix(sep, mix):
    audio = Audio(mix[:, : SR * 3], SR)
    two = sep.separate(audio, stems=2)
    assert list(two) == ["vocals", "accompaniment"]
    assert np.abs(two["vocals"].samples + two["accompaniment"].samples - audio.samples).max() < 1e-4
    four = sep.separate(audio, stems=4)
    np.testing.assert_allclose(two["vocals"].samples, four["vocals"].samples, atol=1e-6)


def test_native_rate_input(sep):
    x = np.random.default_rng(1).standard_normal((2, 44_100 * 2)).astype(np.float32) * 0.1
    stems = sep.split(x, 44_100)
    assert all(s.shape == x.shape for s in stems.values())
    assert np.abs(sum(stems.values()) - x).max() < 1e-4


@pytest.mark.parametrize(("start_s", "stop_s"), [(6.0, 8.0), (0.0, 1.5), (12.5, 14.0)])
def test_windowed_exact_equals_whole(sep, mix, whole, start_s, stop_s):
    # "exact" runs only the Demucs chunks that overlap the window, on the whole pass's chunk grid,
    # with the same normalisation; the resampler sees >= 0.5 s of real audio beyond the window.
    # Remaining differences are float rounding and soxr's edge response 0.5 s away from the cut
    # (its VHQ filter is a few ms long), so 1e-4 of full scale is a strict bound.
    a, b = round(start_s * SR), round(stop_s * SR)
    win = sep.split_window(mix, SR, a, b, mode="exact")
    for name in STEMS_4:
        assert win[name].shape == (2, b - a)
        np.testing.assert_allclose(win[name], whole[name][:, a:b], atol=1e-4)
    assert np.abs(sum(win.values()) - mix[:, a:b]).max() < 1e-4


def test_windowed_centered_is_a_valid_separation(sep, mix, whole):
    a, b = 6 * SR, 8 * SR
    win = sep.split_window(mix, SR, a, b, mode="centered")
    assert np.abs(sum(win.values()) - mix[:, a:b]).max() < 1e-4
    # one model segment instead of the blended grid: close to, but not the same as, the whole pass
    for name in ("drums", "bass", "vocals"):
        ref = whole[name][:, a:b]
        err = np.sqrt(np.mean((win[name] - ref) ** 2) / np.mean(ref**2))
        assert err < 1.0


def test_bad_window_is_an_input_error(sep, mix):
    from musicgen_pipeline.errors import InputError

    with pytest.raises(InputError, match="window"):
        sep.split_window(mix, SR, 10, 5)
    with pytest.raises(InputError, match="stems"):
        sep.separate(Audio(mix, SR), stems=3)
