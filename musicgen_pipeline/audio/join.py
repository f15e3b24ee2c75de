"""Joining segments end to end: the whole transition chain in one call, a fast seam preview, and the
naive baseline.

The chain (each step is also exposed on its own, so the Dagster pipeline can make it an asset):
1. `rhythm.analyze_beats(audio) -> BeatGrid` per segment.
2. `rhythm.choose_target_bpm(grids) -> float` for the track (the first scene's tempo by default).
3. `rhythm.align_segment(audio, grid, target_bpm) -> (Audio, BeatGrid)`: stretched audio, scaled grid.
4. `seam_plan.plan_transition(prev, prev_grid, nxt, next_grid, options) -> TransitionPlan`
   (`timeline.plan_seams` for a whole track, aimed at scene boundaries when given).
5. `seam_plan.stem_windows(plan) -> (Window, Window)`: the frames of each side that need stems;
   separate only those (`stems.split_window`, with any `StemSplitter`: DSP or Demucs).
6. `seam_level.level_glides(segments, plans, ...) -> [envelope | None]`: each incoming segment arrives
   at the outgoing one's level and glides to its own after the overlap.
7. `seam_render.render_transition(plan, prev, nxt, prev_stems, next_stems, gains=...) -> Audio`: the
   overlap (held at its sides' level, `seam_level.hold_level`).
8. `timeline.assemble(segments, plans, overlaps) -> (Audio, [Window])`: the track, each overlap's frames
   (segments with their glides applied, `seam_render.with_gain`). `seam_render.render_track` runs 6-8.
9. `metrics.score_transition` on the joined track per seam.

`join_segments` runs 1-9 and returns a `JoinResult`; `score_seam(prev, nxt)` is the fast preview the
quality loop runs right after generating a segment. Loudness normalisation is a separate call
(`loudness.normalize_loudness`). Thresholds and options are parameters: nothing here reads settings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from musicgen_pipeline.audio.crossfade import fade_curves
from musicgen_pipeline.audio.io import Audio, check_audio, resample
from musicgen_pipeline.audio.join_report import JoinResult, SegmentReport, TransitionReport
from musicgen_pipeline.audio.metrics import QualityThresholds, TransitionScores, score_transition
from musicgen_pipeline.audio.rhythm import (
    BeatGrid,
    align_segment,
    analyze_beats,
    choose_target_bpm,
    octave_ratio,
)
from musicgen_pipeline.audio.seam_options import TransitionOptions
from musicgen_pipeline.audio.seam_plan import plan_transition, stem_windows
from musicgen_pipeline.audio.seam_render import SeamStems, render_track
from musicgen_pipeline.audio.stems import StemSplitter, split_window
from musicgen_pipeline.audio.timeline import plan_seams
from musicgen_pipeline.errors import InputError


def _common_format(segments: Sequence[Audio], names: Sequence[str]) -> list[Audio]:
    if not segments:
        raise InputError("no segments to join")
    rate = segments[0].sample_rate
    channels = max(s.channels for s in segments)
    if channels > 2:
        raise InputError(
            f"{names[int(np.argmax([s.channels for s in segments]))]}: {channels} channels (1 or 2 supported)"
        )
    out = []
    for seg, name in zip(segments, names, strict=True):
        check_audio(seg, name)
        out.append(resample(seg, rate).with_channels(channels))
    return out


def join_segments(
    segments: Sequence[Audio],
    options: TransitionOptions | None = None,
    splitter: StemSplitter | None = None,
    thresholds: QualityThresholds | None = None,
    *,
    grids: Sequence[BeatGrid] | None = None,
    names: Sequence[str] | None = None,
    boundaries: Sequence[float] | None = None,
) -> JoinResult:
    """The whole chain over a list of segments: beats, target tempo, tempo match, plans, stems of the
    overlap windows only, crossfades, assembly, and the four scores per seam.

    Segments are brought to the first one's sample rate and the largest channel count. `grids`
    (one per segment, e.g. from a stored asset) skip beat analysis. With `stem_aware` but no splitter,
    seams are plain crossfades. Loudness normalisation is not done here. `boundaries` (seconds into the
    track, one per seam) centre each overlap there (`plan_seams`) instead of at the end of the previous
    segment; the track is not trimmed (`fit_to_length` does that).
    """
    options = options or TransitionOptions()
    thresholds = thresholds or QualityThresholds()
    names = list(names) if names is not None else [f"segment {i + 1}" for i in range(len(segments))]
    timings = {"beats": 0.0, "stretch": 0.0, "split": 0.0, "crossfade": 0.0, "metrics": 0.0}
    segs = _common_format(segments, names)
    sr = segs[0].sample_rate

    clock = time.perf_counter()
    need_beats = options.beat_align or options.tempo_match or options.stem_aware
    if grids is not None:
        if len(grids) != len(segs):
            raise ValueError(f"{len(segs)} segments but {len(grids)} beat grids")
        found: list[BeatGrid | None] = list(grids)
    elif need_beats and len(segs) > 1:
        found = [analyze_beats(s) for s in segs]
    else:
        found = [None] * len(segs)
    timings["beats"] = time.perf_counter() - clock

    clock = time.perf_counter()
    target = choose_target_bpm(found, options.target_bpm_policy) if options.tempo_match else 0.0
    aligned: list[Audio] = []
    aligned_grids: list[BeatGrid | None] = []
    reports: list[SegmentReport] = []
    for i, (seg, grid) in enumerate(zip(segs, found, strict=True)):
        rate = 1.0
        if options.tempo_match and grid is not None and target > 0:
            out, new_grid = align_segment(
                seg, grid, target, max_stretch=options.max_stretch, time_map=options.time_map
            )
            if out is not seg:
                rate = octave_ratio(grid.bpm, target)[0]
        else:
            out, new_grid = seg, grid
        aligned.append(out)
        aligned_grids.append(new_grid)
        reports.append(
            SegmentReport(
                index=i,
                duration=seg.duration,
                bpm=float(grid.bpm) if grid is not None else 0.0,
                aligned_bpm=float(new_grid.bpm) if new_grid is not None else 0.0,
                stretch_rate=rate,
                aligned_duration=out.duration,
            )
        )
    timings["stretch"] = time.perf_counter() - clock

    plans = plan_seams(aligned, aligned_grids, options, boundaries)[0] if len(aligned) > 1 else []
    stems: list[SeamStems] = []
    context = round(options.stem_context_seconds * sr)
    clock = time.perf_counter()
    for i, plan in enumerate(plans):
        if options.stem_aware and splitter is not None:
            prev_window, next_window = stem_windows(plan)
            stems.append(
                (
                    split_window(splitter, aligned[i], prev_window.start, prev_window.stop, context),
                    split_window(splitter, aligned[i + 1], next_window.start, next_window.stop, context),
                )
            )
        else:
            stems.append((None, None))
    timings["split"] = time.perf_counter() - clock

    clock = time.perf_counter()
    track, seams, steps = render_track(aligned, plans, stems, options.level_glide_seconds)
    timings["crossfade"] = time.perf_counter() - clock

    clock = time.perf_counter()
    transitions: list[TransitionReport] = []
    for i, (plan, seam) in enumerate(zip(plans, seams, strict=True)):
        scores = score_transition(track, seam.start, seam.stop, thresholds)
        stem_aware = plan.stem_aware and splitter is not None
        transitions.append(
            TransitionReport(
                index=i,
                boundary_time=seam.centre / sr,
                overlap_start_time=seam.start / sr,
                overlap_seconds=seam.length / sr,
                bpm_before=plan.prev_bpm,
                bpm_after=plan.next_bpm,
                bass_swap_time=(seam.start + plan.bass_swap) / sr
                if stem_aware and plan.bass_swap is not None
                else None,
                beat_aligned=plan.beat_aligned,
                stem_aware=stem_aware,
                scores=scores,
                plan=plan,
                level_step_db=steps[i],
            )
        )
    timings["metrics"] = time.perf_counter() - clock
    return JoinResult(
        audio=track,
        transitions=transitions,
        segments=reports,
        target_bpm=target,
        stem_source=(splitter.name if splitter is not None and options.stem_aware else "none"),
        timings=timings,
    )


PREVIEW_SECONDS = 12.0


def score_seam(
    prev: Audio,
    nxt: Audio,
    options: TransitionOptions | None = None,
    thresholds: QualityThresholds | None = None,
) -> TransitionScores:
    """Fast preview of the seam between an existing segment and a freshly generated one.

    Uses only prev's last and nxt's first `PREVIEW_SECONDS` (plus the crossfade), matches nxt's tempo to
    prev's, plans the seam as `join_segments` would and renders it with a plain crossfade (no stems:
    the bass swap changes little of what the scores see) and the level glide and hold the mix will
    give it, then scores it. Seconds, not minutes, so the
    quality loop can call it after every generated segment.
    """
    options = options or TransitionOptions()
    thresholds = thresholds or QualityThresholds()
    a, b = _common_format([prev, nxt], ["previous segment", "next segment"])
    span = PREVIEW_SECONDS + options.crossfade_seconds + options.beat_search_seconds
    a = a.slice_seconds(max(0.0, a.duration - span))
    b = b.slice_seconds(0.0, span)
    ga = gb = None
    if options.beat_align or options.tempo_match:
        ga, gb = analyze_beats(a), analyze_beats(b)
        if options.tempo_match and ga.bpm > 0 and gb.bpm > 0:
            b, gb = align_segment(b, gb, ga.bpm, max_stretch=options.max_stretch, time_map=options.time_map)
    plan = plan_transition(a, ga, b, gb, options)
    track, seams, _ = render_track([a, b], [plan], glide_seconds=options.level_glide_seconds)
    return score_transition(track, seams[0].start, seams[0].stop, thresholds)


def linear_crossfade_join(prev: Audio, nxt: Audio, seconds: float) -> Audio:
    """The naive baseline: last `seconds` of prev linearly faded into the first of nxt (no beats, no
    tempo, no stems). For benchmarks and comparisons."""
    n = round(seconds * prev.sample_rate)
    fade_out, fade_in = fade_curves(n, "linear")
    mixed = prev.samples[:, prev.frames - n :] * fade_out + nxt.samples[:, :n] * fade_in
    return Audio(
        np.concatenate([prev.samples[:, : prev.frames - n], mixed, nxt.samples[:, n:]], axis=1),
        prev.sample_rate,
    )
