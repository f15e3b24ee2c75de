"""`aligned_segments`: every segment cleaned of DC offset, then time-stretched to the track's tempo
(rubberband) when `tempo_match`.

The track tempo is the first scene's (`choose_target_bpm`); a segment whose tempo is more than the
`MAX_TEMPO_STRETCH` (default 25 %) away (after octave folding) or has no pulse is left unstretched. Stretching
changes a segment's length by its rate; the metadata shows each rate and the resulting duration. A
one-scene track has no seam and is left as generated (a time map would change its length for nothing).
A segment whose tempo drifts is stretched along a time map (its beats onto an even grid at the track
tempo, `rhythm.drift_time_map`), as `musicgen-pipeline join` does: the request's `TransitionOptions`
(`quality.transition_options`) decide both, so the pipeline and the CLI make the same seams.
"""

import time

import dagster as dg
from dagster import AssetExecutionContext

from musicgen_pipeline.artifacts import (
    AlignedSegment,
    AlignedTrack,
    SceneSegment,
    SegmentBeats,
    stored_grid,
)
from musicgen_pipeline.audio.filters import remove_dc
from musicgen_pipeline.audio.rhythm import align_segment, choose_target_bpm
from musicgen_pipeline.defs.metadata import listen_link, ms, sig3, table
from musicgen_pipeline.defs.partitions import soundtrack_partitions
from musicgen_pipeline.media import read_exact, write_exact
from musicgen_pipeline.naming import SOUNDTRACK_GROUP
from musicgen_pipeline.quality import transition_options
from musicgen_pipeline.request import SoundtrackRequest
from musicgen_pipeline.resources import SettingsResource


@dg.asset(
    partitions_def=soundtrack_partitions,
    group_name=SOUNDTRACK_GROUP,
    kinds={"rubberband"},
    description="Segments cleaned of DC offset and stretched to one tempo (the opening scene's) so beats line up across seams.",
)
def aligned_segments(
    context: AssetExecutionContext,
    soundtrack_request: SoundtrackRequest,
    scene_segments: list[SceneSegment],
    beat_grids: list[SegmentBeats],
    settings: SettingsResource,
) -> AlignedTrack:
    request = soundtrack_request
    files = settings.store.files(context.partition_key)
    config = settings.resolved
    options = transition_options(request, config)
    start = time.perf_counter()
    grids = [g.grid for g in beat_grids]
    target = choose_target_bpm(grids) if request.tempo_match else 0.0
    out = []
    rows = []
    seams = len(scene_segments) > 1  # one scene has no seam: stretching it would only change its length
    for segment, grid in zip(scene_segments, grids, strict=True):
        raw = read_exact(segment.path)
        audio = remove_dc(raw)
        aligned, aligned_grid = (
            align_segment(audio, grid, target, max_stretch=options.max_stretch, time_map=options.time_map)
            if target > 0 and seams
            else (audio, grid)
        )
        rate = audio.duration / aligned.duration if aligned.duration else 1.0
        path = write_exact(files.aligned_path(segment.index), aligned)
        out.append(
            AlignedSegment(
                index=segment.index,
                path=str(path),
                grid=stored_grid(aligned_grid),
                source_bpm=grid.bpm,
                rate=rate,
                duration=aligned.duration,
                dc_offset_removed=float(abs(raw.samples.mean(axis=1)).max()),
            )
        )
        rows.append(
            {
                "scene": segment.index + 1,
                "source_bpm": sig3(grid.bpm),
                "aligned_bpm": sig3(aligned_grid.bpm),
                "stretch_rate": round(rate, 4),
                "seconds": ms(aligned.duration),
                "file": str(path),
            }
        )
    context.add_output_metadata(
        {
            "listen": listen_link(config.listen_url, context.partition_key, "segments"),
            "target_bpm": sig3(target),
            "tempo_match": request.tempo_match,
            "seconds": ms(time.perf_counter() - start),
            "segments": table(
                [
                    ("scene", "int", "scene number (1 = first)"),
                    ("source_bpm", "float", "tempo as generated"),
                    ("aligned_bpm", "float", "tempo after stretching"),
                    ("stretch_rate", "float", "source duration / aligned duration (above 1: sped up)"),
                    ("seconds", "float", "aligned duration"),
                    ("file", "string", "the aligned segment's WAV"),
                ],
                rows,
            ),
        }
    )
    return AlignedTrack(target_bpm=target, segments=tuple(out))
