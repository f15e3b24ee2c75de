"""Orchestration overhead: `render` through Dagster vs the same model and audio calls made directly.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_pipeline.py [--request examples/soundtrack.json]
        [--repeats 2] [--model tiny-random] [--demucs tiny-random]

Both sides render the same request with the same (already loaded) models: MusicGen per scene with the
quality loop's seam scoring, beats, tempo match, seam plans, stems of the seam windows, crossfades,
scores, loudness, the WAV. "dagster" is `launch.materialize` (what `musicgen-pipeline render` runs:
a run on a fresh SQLite instance, every asset's files, metadata and pictures, the catalog refresh);
"direct" calls the same functions in a loop with nothing else. Each side runs `--repeats` times
interleaved and the minimum is kept (the machine is shared). Goal: ratio <= 1.3 on the demo request.

It also times `scene_conditioning` = continuation vs independent (one batched pass) through Dagster.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "musicgen-pipeline" / "numba"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicgen_pipeline.audio.filters import remove_dc
from musicgen_pipeline.audio.io import write_audio
from musicgen_pipeline.audio.loudness import normalize_loudness
from musicgen_pipeline.audio.metrics import score_transition
from musicgen_pipeline.audio.rhythm import align_segment, analyze_beats, choose_target_bpm
from musicgen_pipeline.audio.seam_plan import stem_windows
from musicgen_pipeline.audio.seam_render import render_transition
from musicgen_pipeline.audio.timeline import (
    assemble,
    fit_to_length,
    plan_seams,
    scene_boundaries,
    scene_generation_seconds,
)
from musicgen_pipeline.defs.assets.segment_stems import separate_window
from musicgen_pipeline.quality import judge_seam, quality_thresholds, transition_options
from musicgen_pipeline.request import SoundtrackRequest, load_request
from musicgen_pipeline.scene_attempts import cut_generated, seed_for
from musicgen_pipeline.settings import get_settings

REPO = Path(__file__).resolve().parents[1]


def direct_render(request: SoundtrackRequest, model: object, splitter: object, out: Path) -> float:
    """The pipeline's calls, in order, without Dagster. Returns the soundtrack's duration."""
    from musicgen_pipeline.model_options import generation_params

    settings = get_settings()
    options = transition_options(request, settings)
    thresholds = quality_thresholds(settings)
    params = generation_params(settings)
    prompts = request.scene_prompts()
    # Scenes are generated longer than their share so the track lasts its total (scene_segments).
    seconds = scene_generation_seconds([s.duration for s in request.scenes], options)
    segments = []
    previous = None
    if request.scene_conditioning == "independent":
        # What scene_segments does: one batched call at the longest duration (it fits one window),
        # each row cut to its scene's length.
        longest = max(seconds)
        made = model.generate(
            prompts, longest, seeds=[seed_for(request.seed, i, 0) for i in range(len(prompts))], params=params
        )
        segments = [cut_generated(m, length, model) for m, length in zip(made, seconds, strict=True)]
    else:
        for i in range(len(request.scenes)):
            cont = [previous] if previous is not None else None
            (made,) = model.generate(
                [prompts[i]],
                seconds[i],
                seeds=[seed_for(request.seed, i, 0)],
                params=params,
                continue_from=cont,
            )
            segments.append(made)
            previous = made
    audios = [s.audio for s in segments]
    if settings.use_quality_loop:
        for a, b in itertools.pairwise(audios):
            judge_seam(a, b, options, thresholds)
    grids = [analyze_beats(a) for a in audios]
    audios = [remove_dc(a) for a in audios]  # aligned_segments
    target = choose_target_bpm(grids) if request.tempo_match else 0.0
    aligned = [
        align_segment(a, g, target, max_stretch=options.max_stretch) if target > 0 else (a, g)
        for a, g in zip(audios, grids, strict=True)
    ]
    audios = [a for a, _ in aligned]
    grids = [g for _, g in aligned]
    context = round(options.stem_context_seconds * audios[0].sample_rate)
    boundaries = scene_boundaries([s.duration for s in request.scenes])
    plans, _ = plan_seams(audios, grids, options, boundaries) if len(audios) > 1 else ([], [0])
    overlaps = []
    for t, plan in enumerate(plans):
        prev_stems = next_stems = None
        if options.stem_aware:
            (a0, a1), (b0, b1) = stem_windows(plan)
            prev_stems = separate_window(splitter, audios[t], a0, a1, context)
            next_stems = separate_window(splitter, audios[t + 1], b0, b1, context)
        overlaps.append(render_transition(plan, audios[t], audios[t + 1], prev_stems, next_stems))
    track, seams = assemble(audios, plans, overlaps) if plans else (audios[0], [])
    for s0, s1 in seams:
        score_transition(track, s0, s1, thresholds)
    track = fit_to_length(track, round(request.total_duration * track.sample_rate))
    normalised, _ = normalize_loudness(track, settings.target_lufs, settings.true_peak_dbtp)
    write_audio(out / f"soundtrack.{request.output_format}", normalised, format=request.output_format)
    return normalised.duration


def dagster_render(request: SoundtrackRequest, instance: object, root: Path) -> float:
    from musicgen_pipeline.instance import register_request
    from musicgen_pipeline.launch import materialize
    from musicgen_pipeline.partition_store import PartitionStore

    os.environ["MUSICGEN_DATA"] = str(root)
    store = PartitionStore.for_data_dir(root)
    key = register_request(instance, store, request)
    result = materialize(instance, store, key, log_level="ERROR")
    if not result.success:
        raise SystemExit(f"dagster render failed (run {result.run_id})")
    summary = json.loads((root / "outputs" / key / "summary.json").read_text())
    return float(summary["duration_seconds"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--request", type=Path, default=REPO / "examples" / "soundtrack.json")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", default=os.environ.get("MUSICGEN_MODEL", "tiny-random"))
    parser.add_argument("--demucs", default=os.environ.get("DEMUCS_MODEL", "tiny-random"))
    args = parser.parse_args()
    os.environ["MUSICGEN_MODEL"] = args.model
    os.environ["DEMUCS_MODEL"] = args.demucs
    request = replace(load_request(args.request), model=args.model)
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    os.environ["DAGSTER_HOME"] = str(tmp / "dagster_home")
    os.environ["MUSICGEN_DATA"] = str(tmp / "warm")

    from musicgen_pipeline.instance import get_instance
    from musicgen_pipeline.resources import MusicGenResource, StemSplitterResource

    settings = get_settings()
    instance = get_instance(settings.data_dir)
    model, load_s = MusicGenResource().get(settings, args.model)  # the same cached objects the assets use
    splitter, split_load_s = StemSplitterResource().get(settings)
    print(
        f"models loaded once (not timed): MusicGen {args.model} {load_s:.1f} s, stems {splitter.name} {split_load_s:.1f} s"
    )
    # Warm-up both paths (numba JIT, first-call allocations) before timing.
    dagster_render(replace(request, seed=request.seed + 99), instance, tmp / "warm-dagster")
    direct_render(replace(request, seed=request.seed + 99), model, splitter, tmp)

    rows = []
    for conditioning in ("continuation", "independent"):
        req = replace(request, scene_conditioning=conditioning)
        direct, orchestrated = [], []
        for r in range(args.repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            duration = direct_render(req, model, splitter, tmp)
            direct.append((time.perf_counter() - wall, time.process_time() - cpu))
            wall, cpu = time.perf_counter(), time.process_time()
            dagster_render(req, instance, tmp / f"{conditioning}-{r}")
            orchestrated.append((time.perf_counter() - wall, time.process_time() - cpu))
        best_direct = (min(d[0] for d in direct), min(d[1] for d in direct))
        best_dagster = (min(d[0] for d in orchestrated), min(d[1] for d in orchestrated))
        rows.append((conditioning, duration, best_direct, best_dagster))

    print()
    print(
        f"request: {args.request.name}, {len(request.scenes)} scenes, {request.total_duration:g} s requested; "
        f"best of {args.repeats}; wall seconds, and CPU seconds of this process (less disturbed by other load)"
    )
    print(
        f"{'conditioning':<14}{'audio s':>8}{'direct wall':>12}{'dagster wall':>13}{'ratio':>7}"
        f"{'direct cpu':>12}{'dagster cpu':>12}{'ratio':>7}"
    )
    for conditioning, duration, (dw, dc), (ow, oc) in rows:
        print(
            f"{conditioning:<14}{duration:>8.1f}{dw:>12.2f}{ow:>13.2f}{ow / dw:>6.2f}x{dc:>12.2f}{oc:>12.2f}{oc / dc:>6.2f}x"
        )
    cont, ind = rows[0][3][0], rows[1][3][0]
    print(
        f"independent vs continuation through dagster (wall): {cont / ind:.2f}x faster ({ind:.2f} s vs {cont:.2f} s)"
    )
    print("goal: ratio <= 1.3x on the demo request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
