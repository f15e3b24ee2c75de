"""`segment_stems`: the seam plans on the aligned audio and stems of only the windows they cross-fade.

For each seam the plan (`plan_transition`: overlap on beats of both sides, bass swap on a beat, cut
points at zero crossings) is made on the tempo-matched audio, because only then are the frames to
separate known. Each side's window (`stem_windows`) is separated with `stem_context_seconds` of real
audio around it (Demucs or DSP, STEM_SOURCE) and stored as float WAVs whose sum is exactly the window
of the audio that is cross-faded. With `stem_aware` off (request or USE_STEM_AWARE_CROSSFADE=false)
nothing is separated and the plan has no bass swap.
"""

import time
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from musicgen_pipeline.assets.generation import GPU_POOL, GPU_TAGS
from musicgen_pipeline.assets.media import read_exact, write_exact
from musicgen_pipeline.assets.partitions import soundtrack_partitions
from musicgen_pipeline.assets.quality import transition_options
from musicgen_pipeline.audio.rhythm import BeatGrid
from musicgen_pipeline.audio.stems import split_window
from musicgen_pipeline.audio.transition import plan_transition, stem_windows
from musicgen_pipeline.request import parse_request
from musicgen_pipeline.resources import PartitionFiles, StemSplitterResource
from musicgen_pipeline.settings import get_settings


@dg.asset(
    partitions_def=soundtrack_partitions,
    group_name="soundtrack",
    pool=GPU_POOL,
    op_tags=GPU_TAGS,
    kinds={"pytorch"},
    description="Seam plans on the aligned segments, and Demucs (or DSP) stems of only the cross-faded windows.",
)
def segment_stems(
    context: AssetExecutionContext,
    soundtrack_request: dict[str, Any],
    aligned_segments: dict[str, Any],
    stem_splitter: StemSplitterResource,
) -> list[dict[str, Any]]:
    request = parse_request(soundtrack_request)
    options = transition_options(request, get_settings())
    files = PartitionFiles.for_key(context.partition_key)
    start = time.perf_counter()
    segments = aligned_segments["segments"]
    audios = [read_exact(s["path"]) for s in segments]
    grids = [BeatGrid.from_dict(s["grid"]) for s in segments]
    splitter = None
    load_seconds = 0.0
    if options.stem_aware and len(audios) > 1:
        splitter, load_seconds = stem_splitter.get()
    context_frames = round(options.stem_context_seconds * audios[0].sample_rate) if audios else 0
    out: list[dict[str, Any]] = []
    separated_seconds = 0.0
    rows = []
    for t in range(len(audios) - 1):
        prev, nxt = audios[t], audios[t + 1]
        plan = plan_transition(prev, grids[t], nxt, grids[t + 1], options)
        entry: dict[str, Any] = {"index": t, "plan": plan.to_dict(), "prev": {}, "next": {}}
        if splitter is not None:
            folder = files.stems_dir(t)
            for side, audio, (a, b) in (
                ("prev", prev, stem_windows(plan)[0]),
                ("next", nxt, stem_windows(plan)[1]),
            ):
                stems = split_window(splitter, audio, a, b, context_frames)
                separated_seconds += (b - a) / audio.sample_rate
                for name, samples in stems.items():
                    path = write_exact(folder / f"{side}_{name}.wav", type(audio)(samples, audio.sample_rate))
                    entry[side][name] = str(path)
        rows.append(
            f"| {t} | {plan.overlap_seconds:.3f} | {plan.beat_aligned} | "
            f"{'-' if plan.bass_swap is None else f'{plan.bass_swap / plan.sample_rate:.3f}'} | {len(entry['prev'])} |"
        )
        out.append(entry)
    elapsed = time.perf_counter() - start
    context.add_output_metadata(
        {
            "stem_source": splitter.name if splitter is not None else "none (plain crossfade)",
            "transitions": len(out),
            "separated_seconds": separated_seconds,
            "seconds": elapsed,
            "splitter_load_seconds": load_seconds,
            "plans": dg.MetadataValue.md(
                "| seam | overlap s | on beats | bass swap s | stems |\n|---|---|---|---|---|\n"
                + "\n".join(rows)
            ),
        }
    )
    return out
