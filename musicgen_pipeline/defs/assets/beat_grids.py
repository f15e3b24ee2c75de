"""`beat_grids`: tempo and beat times of every generated segment (librosa), stored as JSON."""

import json
import time
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from musicgen_pipeline.audio.rhythm import analyze_beats
from musicgen_pipeline.defs.partitions import soundtrack_partitions
from musicgen_pipeline.media import read_exact
from musicgen_pipeline.naming import SOUNDTRACK_GROUP
from musicgen_pipeline.resources import SettingsResource


@dg.asset(
    partitions_def=soundtrack_partitions,
    group_name=SOUNDTRACK_GROUP,
    kinds={"librosa"},
    description="BPM and beat times of each generated segment (octave-corrected librosa beat tracking).",
)
def beat_grids(
    context: AssetExecutionContext, scene_segments: list[dict[str, Any]], settings: SettingsResource
) -> list[dict[str, Any]]:
    files = settings.store.files(context.partition_key)
    start = time.perf_counter()
    grids = []
    for segment in scene_segments:
        grid = analyze_beats(read_exact(segment["path"]))
        grids.append({"index": segment["index"], **grid.to_dict()})
    path = files.grids_path()
    path.write_text(json.dumps(grids, indent=2), encoding="utf-8")
    context.add_output_metadata(
        {
            "bpm": dg.MetadataValue.json({f"scene_{g['index']}": g["bpm"] for g in grids}),
            "beats": dg.MetadataValue.json({f"scene_{g['index']}": len(g["beat_times"]) for g in grids}),
            "seconds": time.perf_counter() - start,
            "path": dg.MetadataValue.path(str(path)),
        }
    )
    return grids
