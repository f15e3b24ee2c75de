"""`Window`: a [start, stop) range of frames of one piece of audio, named instead of a bare tuple.

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
