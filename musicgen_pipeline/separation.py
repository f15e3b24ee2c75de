"""Stem separation of one audio file into 16-bit WAVs at 44.1 kHz stereo (REST ``/separate``); plain
Python, used by the `separated_stems` asset."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from musicgen_pipeline.audio.atomic_write import write_audio_atomic
from musicgen_pipeline.audio.io import Audio, read_audio, resample
from musicgen_pipeline.audio.stems import STEMS_2, STEMS_4

STEM_SAMPLE_RATE = 44_100
STEM_CHANNELS = 2


def _as_audio(value: Any, sample_rate: int) -> Audio:
    return value if isinstance(value, Audio) else Audio(value, sample_rate)


def separate_file(input_path: Path, stems: int, out_dir: Path, separator: Any) -> dict[str, Any]:
    """Separate `input_path` into `stems` (4 or 2) 16-bit WAVs at 44.1 kHz stereo in `out_dir`."""
    audio = read_audio(input_path)
    audio = resample(audio.with_channels(STEM_CHANNELS), STEM_SAMPLE_RATE)
    start = time.perf_counter()
    if hasattr(separator, "separate"):
        parts = separator.separate(audio, stems=stems, residual_other=True)
    else:  # a plain StemSplitter: four stems; two-stem mode sums everything but vocals
        raw = separator.split(audio.samples, audio.sample_rate)
        parts = {name: raw[name] for name in STEMS_4}
        if stems == 2:
            parts = {"vocals": raw["vocals"], "accompaniment": sum(raw[n] for n in STEMS_4 if n != "vocals")}
    seconds = time.perf_counter() - start
    names = STEMS_4 if stems == 4 else STEMS_2
    missing = [n for n in names if n not in parts]
    if missing:
        raise RuntimeError(f"the separator returned {sorted(parts)}, missing {missing}")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    for name in names:
        stem = _as_audio(parts[name], audio.sample_rate)
        stem = resample(stem.with_channels(STEM_CHANNELS), STEM_SAMPLE_RATE)
        stem = Audio(stem.samples[:, : audio.frames], stem.sample_rate)
        paths[name] = str(write_audio_atomic(out_dir / f"{name}.wav", stem, format="wav"))
    return {
        "input_path": str(input_path),
        "stems": stems,
        "stem_paths": paths,
        "duration_seconds": audio.duration,
        "separation_seconds": seconds,
        "real_time_factor": seconds / audio.duration if audio.duration else None,
    }
