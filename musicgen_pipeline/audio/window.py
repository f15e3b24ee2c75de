"""`Window`: a [start, stop) range of frames of one piece of audio, named instead of a bare tuple;
`window_means`: a signal's mean over windows slid along it (levels, energies, onset envelopes).

As demucs passes a `TensorChunk` (offset + length) rather than `(start, stop)` pairs, the seam code
hands windows around: the overlap of each side of a seam, the frames a stem splitter must separate,
where an overlap lies in the joined track. It is a `NamedTuple`, so `start, stop = window` still works.
Frames, not seconds: every window is exact to the sample.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Window(NamedTuple):
    """Frames [start, stop) (stop exclusive; start <= stop)."""

    start: int
    stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start

    @property
    def centre(self) -> float:
        return (self.start + self.stop) / 2

    def shifted(self, frames: int) -> Window:
        return Window(self.start + frames, self.stop + frames)

    def of(self, samples: np.ndarray) -> np.ndarray:
        """The window's frames of a (channels, frames) or (frames,) array (a view)."""
        return samples[..., self.start : self.stop]

    def seconds(self, sample_rate: int) -> tuple[float, float]:
        return self.start / sample_rate, self.stop / sample_rate


def window_means(x: np.ndarray, width: int, hop: int = 1) -> np.ndarray:
    """The mean of the 1-D `x` over each window [s, s + `width`), s = 0, `hop`, 2 `hop`, ... while a
    whole window fits: shape ((x.size - width) // hop + 1,), empty when `x` is shorter than one window.
    From a running sum, so long audio needs no (windows, width) matrix. Applied to a signal's square (or
    a metered power, `seam_level.metered_power`), the windows' mean powers: the 400 ms levels of the
    seam code, the 2 ms energies of the onset envelopes.

    >>> window_means(np.arange(6.0), 2, 2)
    array([0.5, 2.5, 4.5])
    >>> window_means(np.ones(3), 4).size
    0
    """
    x = np.asarray(x, dtype=np.float64)
    if width <= 0 or x.size < width:
        return np.zeros(0)
    csum = np.concatenate([[0.0], np.cumsum(x)])
    starts = np.arange(0, x.size - width + 1, max(1, hop))
    return (csum[starts + width] - csum[starts]) / width
