"""`separated_stems`: stem separation of a client's audio file (`POST /separate`), one dynamic
partition per job.

The REST layer stores the audio under `$MUSICGEN_DATA/uploads/` and writes the partition's
``separation.json`` (`PartitionStore.write_separation_request`) before it launches the
`separate_audio` job for that partition, so a re-execution from the UI needs no config. The asset
writes one 16-bit PCM WAV per stem at 44.1 kHz stereo (``stems/<stem>.wav``) and
``separation_summary.json`` last, which marks the partition as done.
"""

from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from musicgen_pipeline.defs.partitions import separation_partitions
from musicgen_pipeline.gpu_runs import GPU_POOL
from musicgen_pipeline.naming import SEPARATION_GROUP
from musicgen_pipeline.partition_store import write_json_atomic
from musicgen_pipeline.resources import SettingsResource, StemSplitterResource
from musicgen_pipeline.retention import check_free_space
from musicgen_pipeline.separation import separate_file


@dg.asset(
    partitions_def=separation_partitions,
    group_name=SEPARATION_GROUP,
    pool=GPU_POOL,
    kinds={"pytorch"},
    description="Demucs stems of an uploaded or fetched audio file (POST /separate): 16-bit WAV, 44.1 kHz stereo.",
)
def separated_stems(
    context: AssetExecutionContext, separator: StemSplitterResource, settings: SettingsResource
) -> dg.MaterializeResult:
    key = context.partition_key
    check_free_space(
        settings.resolved.data_dir, settings.resolved.min_free_bytes, f"separation {context.partition_key}"
    )
    store = settings.store
    files = store.files(key)
    input_path, stems = store.read_separation_request(key)
    splitter, load_seconds = separator.get(settings.resolved)
    summary = separate_file(input_path, stems, files.separation_stems_dir, splitter)
    summary["model"] = separator.resolved(settings.resolved)[1]
    summary["model_load_seconds"] = load_seconds
    write_json_atomic(files.separation_summary, summary)
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
