"""`segment_stems`: the seam plans on the aligned audio and stems of only the windows they cross-fade.

For each seam the plan (`plan_transition`: overlap on beats of both sides, bass swap on a beat, cut
points at zero crossings) is made on the tempo-matched audio, because only then are the frames to
separate known. Seams are planned in order (`plan_seams`) and aimed at the scene boundaries
T_k = d_0 + ... + d_{k-1}: seam k's overlap is centred on T_k (on the nearest beat within
beat_search_seconds when beat-aligned), since each scene was generated with audio to spare on both sides.
Each side's window (`stem_windows`) is separated by the splitter's own exact windowed mode when it has
one (Demucs: `split_window(samples, rate, start, stop, mode="exact")`, equal to whole-segment
separation over the window), else with `stem_context_seconds` of real audio around it
(`audio.stems.split_window`), and stored as float WAVs whose sum is exactly the window of the audio
that is cross-faded. With `stem_aware` off (request or USE_STEM_AWARE_CROSSFADE=false)
nothing is separated and the plan has no bass swap.
"""

import time

import dagster as dg
from dagster import AssetExecutionContext

from musicgen_pipeline.artifacts import AlignedTrack, Seam
from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.audio.seam_plan import stem_windows
from musicgen_pipeline.audio.stems import Stems, StemSplitter, split_window
from musicgen_pipeline.audio.timeline import plan_seams, scene_boundaries
from musicgen_pipeline.defs.metadata import files_table, listen_link, ms, table
from musicgen_pipeline.defs.partitions import soundtrack_partitions
from musicgen_pipeline.gpu_runs import GPU_POOL
from musicgen_pipeline.media import read_exact, write_exact
from musicgen_pipeline.naming import SOUNDTRACK_GROUP
from musicgen_pipeline.quality import transition_options
from musicgen_pipeline.request import SoundtrackRequest
from musicgen_pipeline.resources import SettingsResource, StemSplitterResource


def separate_window(splitter: StemSplitter, audio: Audio, start: int, stop: int, context: int) -> Stems:
    """Stems of `audio` frames [start, stop): the splitter's own exact windowed separation when it has
    one (Demucs), else the generic one (`context` frames of real audio on each side)."""
    own = getattr(splitter, "split_window", None)
    if callable(own):
        return own(audio.samples, audio.sample_rate, start, stop, mode="exact")
    return split_window(splitter, audio, start, stop, context)


@dg.asset(
    partitions_def=soundtrack_partitions,
    group_name=SOUNDTRACK_GROUP,
    pool=GPU_POOL,
    kinds={"pytorch"},
    description="Seam plans on the aligned segments, and Demucs (or DSP) stems of only the cross-faded windows.",
)
def segment_stems(
    context: AssetExecutionContext,
    soundtrack_request: SoundtrackRequest,
    aligned_segments: AlignedTrack,
    stem_splitter: StemSplitterResource,
    settings: SettingsResource,
) -> list[Seam]:
    request = soundtrack_request
    options = transition_options(request, settings.resolved)
    files = settings.store.files(context.partition_key)
    start = time.perf_counter()
    segments = aligned_segments.segments
    audios = [read_exact(s.path) for s in segments]
    grids = [s.grid for s in segments]
    splitter = None
    load_seconds = 0.0
    if options.stem_aware and len(audios) > 1:
        splitter, load_seconds = stem_splitter.get(settings.resolved)
    context_frames = round(options.stem_context_seconds * audios[0].sample_rate) if audios else 0
    out: list[Seam] = []
    separated_seconds = 0.0
    rows: list[dict[str, object]] = []
    stem_rows: list[dict[str, object]] = []
    boundaries = scene_boundaries([s.duration for s in request.scenes])
    plans, offsets = plan_seams(audios, grids, options, boundaries) if len(audios) > 1 else ([], [0])
    for t, plan in enumerate(plans):
        prev, nxt = audios[t], audios[t + 1]
        sr = plan.sample_rate
        centre = (offsets[t] + plan.prev_start + plan.overlap_frames / 2) / sr
        miss = centre - boundaries[t]
        allowed = options.beat_search_seconds if options.beat_align else 0.005
        if abs(miss) > allowed + 1.0 / sr:
            context.log.warning(
                f"seam {t}: overlap centred at {centre:.3f} s, {miss:+.3f} s from the scene boundary "
                f"{boundaries[t]:g} s (segment {t} is {prev.duration:.2f} s after tempo matching: too short "
                f"for its target); the duration check reports the result"
            )
        stem_files: dict[str, dict[str, str]] = {"prev": {}, "next": {}}
        if splitter is not None:
            folder = files.stems_dir(t)
            for side, audio, (a, b) in (
                ("prev", prev, stem_windows(plan)[0]),
                ("next", nxt, stem_windows(plan)[1]),
            ):
                stems = separate_window(splitter, audio, a, b, context_frames)
                separated_seconds += (b - a) / audio.sample_rate
                for name, samples in stems.items():
                    path = write_exact(folder / f"{side}_{name}.wav", type(audio)(samples, audio.sample_rate))
                    stem_files[side][name] = str(path)
        entry = Seam(
            index=t,
            plan=plan,
            target_time=boundaries[t],
            offset_frames=offsets[t],
            prev=stem_files["prev"],
            next=stem_files["next"],
        )
        rows.append(
            {
                "seam": t + 1,
                "scene_boundary_seconds": ms(boundaries[t]),
                "overlap_centre_seconds": ms(centre),
                "overlap_seconds": ms(plan.overlap_seconds),
                "on_beats": plan.beat_aligned,
                "bass_swap_seconds": -1.0
                if plan.bass_swap is None
                else ms(plan.bass_swap / plan.sample_rate),
                "stems": len(entry.prev),
            }
        )
        stem_rows += [
            {"seam": t + 1, "side": side, "stem": name, "file": path}
            for side, paths in (("prev", entry.prev), ("next", entry.next))
            for name, path in paths.items()
        ]
        out.append(entry)
    elapsed = time.perf_counter() - start
    context.add_output_metadata(
        {
            "stem_source": splitter.name if splitter is not None else "none (plain crossfade)",
            "transitions": len(out),
            "listen": listen_link(settings.resolved.listen_url, context.partition_key, "stems"),
            "separated_seconds": ms(separated_seconds),
            "seconds": ms(elapsed),
            "splitter_load_seconds": ms(load_seconds),
            "plans": table(
                [
                    ("seam", "int", "seam number (1 = between scenes 1 and 2)"),
                    ("scene_boundary_seconds", "float", "the scene boundary the overlap aims at"),
                    ("overlap_centre_seconds", "float", "centre of the crossfade in the track"),
                    ("overlap_seconds", "float", "length of the crossfade"),
                    ("on_beats", "bool", "the overlap starts on a beat of both sides"),
                    ("bass_swap_seconds", "float", "bass swap point from the overlap start (-1: none)"),
                    ("stems", "int", "stems separated per side (0: plain crossfade)"),
                ],
                rows,
            ),
            "stems": files_table(
                stem_rows,
                [
                    ("seam", "int", "seam number"),
                    ("side", "string", "prev: the outgoing scene's window; next: the incoming one's"),
                    ("stem", "string", "Demucs/DSP stem"),
                ],
            ),
        }
    )
    return out
