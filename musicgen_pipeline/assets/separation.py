"""Stem separation of a client's audio file (`POST /separate`): one dynamic partition per job.

The REST layer stores the audio under `$MUSICGEN_DATA/uploads/` and writes
`outputs/<partition>/separation.json` (`{"input_path": ..., "stems": 4|2}`) before it launches the
`separate_audio` job for that partition, so a re-execution from the UI needs no config. The asset
writes one 16-bit PCM WAV per stem at 44.1 kHz stereo (`outputs/<partition>/stems/<stem>.wav`) and
`outputs/<partition>/separation_summary.json` last, which marks the partition as done.
"""

import json
import time
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from musicgen_pipeline.assets.generation import GPU_POOL, GPU_TAGS
from musicgen_pipeline.audio.io import Audio, read_audio, resample, write_audio
from musicgen_pipeline.audio.stems import STEMS_2, STEMS_4
from musicgen_pipeline.errors import InputError
from musicgen_pipeline.request import check_partition_key
from musicgen_pipeline.resources import StemSplitterResource
from musicgen_pipeline.settings import get_settings

SEPARATION_PARTITIONS_NAME = "separation_requests"
SEPARATION_JOB = "separate_audio"
SEPARATION_REQUEST_FILE = "separation.json"
SEPARATION_SUMMARY_FILE = "separation_summary.json"
STEM_SAMPLE_RATE = 44_100
STEM_CHANNELS = 2

separation_partitions = dg.DynamicPartitionsDefinition(name=SEPARATION_PARTITIONS_NAME)


def separation_dir(key: str) -> Path:
    return get_settings().outputs_dir / check_partition_key(key)


def write_separation_request(key: str, input_path: Path, stems: int) -> Path:
    """The partition's config, written atomically before its run is launched."""
    if stems not in (4, 2):
        raise InputError(f"stems={stems}: must be 4 or 2")
    folder = separation_dir(key)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SEPARATION_REQUEST_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(
        json.dumps({"input_path": str(input_path), "stems": stems}, indent=2) + "\n", encoding="utf-8"
    )
    tmp.replace(path)
    return path


def read_separation_request(key: str) -> tuple[Path, int]:
    path = separation_dir(key) / SEPARATION_REQUEST_FILE
    if not path.exists():
        raise InputError(f"partition {key!r}: no separation request at {path}")
    data = json.loads(path.read_text(encoding="utf-8"))
    stems = int(data.get("stems", 4))
    if stems not in (4, 2):
        raise InputError(f"{path}: stems={stems} must be 4 or 2")
    return Path(data["input_path"]), stems


def read_separation_summary(key: str) -> dict[str, Any] | None:
    path = separation_dir(key) / SEPARATION_SUMMARY_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


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
        paths[name] = str(write_audio(out_dir / f"{name}.wav", stem, format="wav"))
    return {
        "input_path": str(input_path),
        "stems": stems,
        "stem_paths": paths,
        "duration_seconds": audio.duration,
        "separation_seconds": seconds,
        "real_time_factor": seconds / audio.duration if audio.duration else None,
    }


@dg.asset(
    partitions_def=separation_partitions,
    group_name="separation",
    pool=GPU_POOL,
    op_tags=GPU_TAGS,
    kinds={"pytorch"},
    description="Demucs stems of an uploaded or fetched audio file (POST /separate): 16-bit WAV, 44.1 kHz stereo.",
)
def separated_stems(context: AssetExecutionContext, separator: StemSplitterResource) -> dg.MaterializeResult:
    key = context.partition_key
    input_path, stems = read_separation_request(key)
    splitter, load_seconds = separator.get()
    folder = separation_dir(key)
    summary = separate_file(input_path, stems, folder / "stems", splitter)
    summary["model"] = separator.resolved()[1]
    summary["model_load_seconds"] = load_seconds
    tmp = folder / (SEPARATION_SUMMARY_FILE + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    tmp.replace(folder / SEPARATION_SUMMARY_FILE)
    metadata: dict[str, Any] = {
        "stems": stems,
        "model": summary["model"],
        "duration_seconds": round(summary["duration_seconds"], 3),
        "separation_seconds": round(summary["separation_seconds"], 3),
        "real_time_factor": round(summary["real_time_factor"] or 0.0, 4),
        "input_path": dg.MetadataValue.path(str(input_path)),
    }
    for name, path in summary["stem_paths"].items():
        metadata[f"{name}_path"] = dg.MetadataValue.path(path)
    return dg.MaterializeResult(metadata=metadata)


separate_audio_job = dg.define_asset_job(
    SEPARATION_JOB,
    selection=[separated_stems],
    description="Split one uploaded/fetched audio file into stems (one partition per REST /separate job).",
)

# Merged into the code location by `musicgen_pipeline.definitions`. `/separate` always means Demucs,
# whatever STEM_SOURCE picks for the crossfades.
separation_defs = dg.Definitions(
    assets=[separated_stems],
    jobs=[separate_audio_job],
    resources={"separator": StemSplitterResource(source="demucs")},
)
