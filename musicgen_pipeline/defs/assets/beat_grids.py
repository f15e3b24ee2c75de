"""`beat_grids`: tempo and beat times of every generated segment (librosa), stored as JSON."""

import json
import time

import dagster as dg
import numpy as np
from dagster import AssetExecutionContext

from musicgen_pipeline.artifacts import SceneSegment, SegmentBeats, stored_grid
from musicgen_pipeline.audio.rhythm import analyze_beats
from musicgen_pipeline.defs.metadata import ms, sig3, table
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
    context: AssetExecutionContext, scene_segments: list[SceneSegment], settings: SettingsResource
) -> list[SegmentBeats]:
    files = settings.store.files(context.partition_key)
    start = time.perf_counter()
    grids = [
        SegmentBeats(segment.index, stored_grid(analyze_beats(read_exact(segment.path))))
        for segment in scene_segments
    ]
    path = files.grids_path()
    path.write_text(
        json.dumps([{"index": g.index, **g.grid.to_dict()} for g in grids], indent=2), encoding="utf-8"
    )
    context.add_output_metadata(
        {
            "beat_grids": table(
                [
                    ("scene", "int", "scene number (1 = first)"),
                    ("bpm", "float", "tempo of the generated segment"),
                    ("beats", "int", "beats found"),
                    ("first_beat_seconds", "float", "time of the first beat"),
                    ("beat_interval_seconds", "float", "median time between beats"),
                ],
                [_grid_row(g) for g in grids],
            ),
            "seconds": ms(time.perf_counter() - start),
            "beat_grids_file": dg.MetadataValue.path(str(path)),
        }
    )
    return grids


def _grid_row(beats: SegmentBeats) -> dict[str, float | int]:
    times = np.asarray(beats.grid.beat_times, dtype=float)
    return {
        "scene": beats.index + 1,
        "bpm": sig3(beats.grid.bpm),
        "beats": int(times.size),
        "first_beat_seconds": ms(times[0]) if times.size else 0.0,
        "beat_interval_seconds": ms(float(np.median(np.diff(times)))) if times.size > 1 else 0.0,
    }
