"""The stem interface: anything that splits a mix into named stems of the mix's shape.

The DSP splitter (this package) and the Demucs separator (`musicgen_pipeline.models.demucs`) both
implement `StemSplitter`; the stem-aware crossfade only sees this interface.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

STEMS_4 = ("drums", "bass", "other", "vocals")
STEMS_2 = ("vocals", "accompaniment")

Stems = dict[str, np.ndarray]  # name -> float32 (channels, frames), same shape as the mix


@runtime_checkable
class StemSplitter(Protocol):
    """Splits (channels, frames) float32 audio at `sample_rate` into STEMS_4, each the mix's shape.

    Implementations return stems that sum back to the mix (residual `other`) unless documented.
    """

    name: str

    def split(self, samples: np.ndarray, sample_rate: int) -> Stems: ...
