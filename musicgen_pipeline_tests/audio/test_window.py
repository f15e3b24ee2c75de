"""`window.window_means`: the running-sum window means the level, energy and onset code share."""

from __future__ import annotations

import numpy as np
import pytest

from musicgen_pipeline.audio.window import Window, window_means


@pytest.mark.parametrize(("width", "hop"), [(1, 1), (7, 1), (400, 50), (441, 17), (1000, 1000)])
def test_window_means_are_the_means_of_the_windows(width: int, hop: int) -> None:
    x = np.random.default_rng(width + hop).standard_normal(5000) ** 2
    expected = [x[s : s + width].mean() for s in range(0, x.size - width + 1, hop)]
    np.testing.assert_allclose(window_means(x, width, hop), expected, rtol=1e-9, atol=1e-12)


def test_no_window_when_the_signal_is_shorter_than_one() -> None:
    assert window_means(np.ones(3), 4).size == 0
    assert window_means(np.ones(4), 4).tolist() == [1.0]
    assert window_means(np.zeros(0), 1).size == 0


def test_a_window_names_its_frames() -> None:
    w = Window(100, 300)
    assert w.length == 200 and w.centre == 200.0 and w.shifted(-50) == Window(50, 250)
    assert w.of(np.arange(1000)[None, :]).shape == (1, 200)
