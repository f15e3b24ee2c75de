"""Dagster resources: the models (loaded once per process, lazily) and the output folder layout.

Models are cached at module level keyed by (model id, device, dtype), so every step and every
partition executed in one process share one loaded model; `load_counts()` says how many times each
kind was really loaded (a test proves a 3-scene run loads MusicGen once). Imports of the model code
happen on first use, so importing the code location (webserver, sensors) never imports torch.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from musicgen_pipeline.audio.stems import StemSplitter
from musicgen_pipeline.request import check_partition_key
from musicgen_pipeline.settings import get_settings

_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str, str, str], Any] = {}
_LOAD_COUNTS: Counter[str] = Counter()
_LOAD_SECONDS: dict[tuple[str, str, str, str], float] = {}


def load_counts() -> dict[str, int]:
    """How many times each model kind was loaded in this process (``musicgen``, ``demucs``)."""
    return dict(_LOAD_COUNTS)


def clear_model_cache() -> None:
    """Forget loaded models (tests; frees memory)."""
    with _LOCK:
        _MODELS.clear()
        _LOAD_COUNTS.clear()
        _LOAD_SECONDS.clear()


def _cached(kind: str, model_id: str, device: str, dtype: str, load: Any) -> tuple[Any, float]:
    key = (kind, model_id, device, dtype)
    with _LOCK:
        if key not in _MODELS:
            start = time.perf_counter()
            _MODELS[key] = load()
            _LOAD_SECONDS[key] = time.perf_counter() - start
            _LOAD_COUNTS[kind] += 1
        return _MODELS[key], _LOAD_SECONDS[key]


class MusicGenResource(dg.ConfigurableResource):
    """MusicGen, loaded on first use and shared by every step of the process.

    Empty fields fall back to the settings (MUSICGEN_MODEL, MUSICGEN_DEVICE, MUSICGEN_DTYPE); a
    request's ``model`` overrides the model id for that request.
    """

    model_id: str = ""
    device: str = ""
    dtype: str = ""

    def resolved(self, model_id: str | None = None) -> tuple[str, str, str]:
        settings = get_settings()
        return (
            model_id or self.model_id or settings.musicgen_model,
            self.device or settings.device,
            self.dtype or settings.dtype,
        )

    def get(self, model_id: str | None = None) -> tuple[Any, float]:
        """(model, seconds its load took). The load happens once per (model, device, dtype) per process."""
        from musicgen_pipeline.models.musicgen import get_musicgen

        mid, device, dtype = self.resolved(model_id)
        return _cached("musicgen", mid, device, dtype, lambda: get_musicgen(mid, device=device, dtype=dtype))


class StemSplitterResource(dg.ConfigurableResource):
    """The stem splitter used at transitions: Demucs (``STEM_SOURCE=demucs``) or the DSP splitter.

    Empty fields fall back to STEM_SOURCE and DEMUCS_MODEL.
    """

    source: str = ""
    demucs_model: str = ""

    def resolved(self) -> tuple[str, str]:
        settings = get_settings()
        return (self.source or settings.stem_source).lower(), self.demucs_model or settings.demucs_model

    @property
    def uses_gpu(self) -> bool:
        return self.resolved()[0] == "demucs"

    def get(self) -> tuple[StemSplitter, float]:
        source, model = self.resolved()
        if source == "dsp":
            from musicgen_pipeline.audio.stems import DspStemSplitter

            return _cached("dsp", "dsp", "cpu", "float32", DspStemSplitter)
        from musicgen_pipeline.models.demucs import get_separator

        return _cached("demucs", model, "auto", "auto", lambda: get_separator(model))


@dataclass(frozen=True)
class PartitionFiles:
    """Where a partition's files live: ``$MUSICGEN_DATA/outputs/<partition>/``."""

    root: Path

    @classmethod
    def for_key(cls, key: str, outputs_dir: Path | None = None) -> PartitionFiles:
        base = outputs_dir or get_settings().outputs_dir
        return cls(base / check_partition_key(key))

    def ensure(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def request(self) -> Path:
        return self.root / "request.json"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    def segment_path(self, index: int) -> Path:
        return self.ensure("segments") / f"scene_{index:02d}.wav"

    def aligned_path(self, index: int) -> Path:
        return self.ensure("aligned") / f"scene_{index:02d}.wav"

    def stems_dir(self, transition: int) -> Path:
        return self.ensure("stems", f"transition_{transition:02d}")

    def grids_path(self) -> Path:
        return self.ensure("analysis") / "beat_grids.json"

    def pictures_dir(self) -> Path:
        return self.ensure("pictures")

    def soundtrack_path(self, fmt: str) -> Path:
        return self.root / f"soundtrack.{fmt}"

    def report_path(self) -> Path:
        return self.root / "transition_report.json"
