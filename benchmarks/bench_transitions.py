"""Where the time of one transition goes: two 30 s segments joined with the full chain, stage by stage.

    .venv/bin/python benchmarks/bench_transitions.py [--seconds 30] [--repeat 3] [--stems dsp|demucs]

Each stage is timed (median of --repeat runs, after one warm-up; wall clock and CPU time) beside a
baseline, the two run in turn, one run of each, so the ratio survives noisy shared machines:
  beats      ours: analyze_beats (tracker + octave choice + attack refinement), both segments
             baseline: librosa.beat.beat_track alone on the same audio
  stretch    ours: align_segment (rubberband R3 'fine', pitch kept) of the second segment
             baseline: none (the naive join does not match tempo)
  split      ours: split_window of the two overlap windows only (+1 s context each side)
             baseline: the same splitter on both whole segments
  crossfade  ours: plan_transition + render_transition (stem-aware) + assemble
             baseline: linear_crossfade_join (naive linear crossfade, no beats/stems)
  metrics    ours: score_transition (four scores + click detector + rhythm) on the seam
  total      ours: all of the above; baseline: the naive join
What the rhythm precision costs per seam (issue 12), each beside the same step without it:
  phase lock plan_transition with phase_lock (bar position + onset cross-correlation)
             baseline: plan_transition with phase_lock=False (beats only)
  rhythm     score_transition with rhythm=True; baseline: rhythm=False (the four scores + clicks)
  time map   align_segment(time_map=True) of a segment whose tempo drifts 4 % (rubberband R2 along
             its beats; needs fluidsynth for the realistic clip, else skipped)
             baseline: align_segment at its average tempo (R3, one rate)
  level      level_glides + render_transition holding the level (K-weighted levels of 3 s either
             side, the overlap's lift) and the glided segment for assembly
             baseline: render_transition without (hold_level off, no glide)
  level hold hold_level_gain measured HOLD_PASSES times on the overlap as lifted so far
             baseline: the same, one pass
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "musicgen-pipeline" / "numba"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicgen_pipeline.audio.io import Audio, resample
from musicgen_pipeline.audio.join import linear_crossfade_join
from musicgen_pipeline.audio.metrics import score_transition
from musicgen_pipeline.audio.rhythm import align_segment, analyze_beats
from musicgen_pipeline.audio.seam_level import CONTEXT_SECONDS, HOLD_PASSES, hold_level_gain, level_glides
from musicgen_pipeline.audio.seam_options import TransitionOptions
from musicgen_pipeline.audio.seam_plan import plan_transition, stem_windows
from musicgen_pipeline.audio.seam_render import render_transition, with_gain
from musicgen_pipeline.audio.stems import DspStemSplitter, StemSplitter, split_window
from musicgen_pipeline.audio.synth import synth_song
from musicgen_pipeline.audio.timeline import assemble
from musicgen_pipeline.audio.window import Window


@dataclasses.dataclass(frozen=True)
class Timing:
    """Median seconds of a step: wall clock and CPU time (`_cpu_seconds`)."""

    wall: float
    cpu: float


def _cpu_seconds() -> float:
    """CPU time of this process (`time.process_time`, fine-grained) and of the children it waited for
    (rubberband runs as one; counted in 10 ms ticks)."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


def _once(fn: Callable[[], object]) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), _cpu_seconds()
    result = fn()
    return time.perf_counter() - wall, _cpu_seconds() - cpu, result


def timed(
    fn: Callable[[], object], repeat: int, base: Callable[[], object] | None = None
) -> tuple[Timing, object, Timing | None]:
    """`fn` timed `repeat` times after one warm-up (imports, numba caches, FFT plans), and `base` with
    it, one run of each in turn, so both see the same load of a shared machine. Returns the medians,
    `fn`'s last result and `base`'s medians (None without `base`)."""
    fns = [fn] if base is None else [fn, base]
    for f in fns:
        f()
    runs: list[list[tuple[float, float]]] = [[] for _ in fns]
    result: object = None
    for _ in range(repeat):
        for i, f in enumerate(fns):
            wall, cpu, out = _once(f)
            runs[i].append((wall, cpu))
            if i == 0:
                result = out
    medians = [Timing(statistics.median(w for w, _ in r), statistics.median(c for _, c in r)) for r in runs]
    return medians[0], result, (medians[1] if base is not None else None)


def _drifting_clip(seconds: float) -> Audio | None:
    """A realistic clip (MIDI rendered with fluidsynth) whose tempo drifts 4 %; None without fluidsynth."""
    import tempfile

    from musicgen_pipeline_tests.realistic_music import RealisticSong, fluidsynth_missing, render_clip

    if fluidsynth_missing():
        print(f"time map row skipped: {fluidsynth_missing()}", file=sys.stderr)
        return None
    song = RealisticSong(100, seconds, root=60, mode="major", lead_program=40, drift=0.04, seed=9)
    return render_clip(song, Path(tempfile.gettempdir()) / "musicgen-realistic-clips")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each segment (default 30)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per stage (median reported)")
    parser.add_argument("--stems", choices=("dsp", "demucs"), default="dsp", help="splitter to time")
    args = parser.parse_args()

    sr = 32000
    a = synth_song(118, args.seconds, sr, seed=1, channels=2)
    b = synth_song(126, args.seconds, sr, seed=2, channels=2)
    splitter: StemSplitter
    if args.stems == "demucs":
        from musicgen_pipeline.model_options import separator_options
        from musicgen_pipeline.models.demucs import get_separator
        from musicgen_pipeline.settings import get_settings

        splitter = get_separator(**separator_options(get_settings()))
    else:
        splitter = DspStemSplitter()
    options = TransitionOptions()
    rows: list[tuple[str, Timing, str, Timing | None]] = []

    def librosa_beats() -> object:
        import librosa

        for seg in (a, b):
            librosa.beat.beat_track(y=resample(seg, 22050).mono(), sr=22050)
        return None

    t_beats, grids, t_lib = timed(lambda: (analyze_beats(a), analyze_beats(b)), args.repeat, librosa_beats)
    rows.append(("beats (2 segments)", t_beats, "librosa beat_track only", t_lib))
    ga, gb = grids  # type: ignore[misc]

    t_stretch, aligned, _ = timed(lambda: align_segment(b, gb, ga.bpm), args.repeat)
    rows.append(("stretch (1 segment)", t_stretch, "none", None))
    nb, ngb = aligned  # type: ignore[misc]

    plan = plan_transition(a, ga, nb, ngb, options)
    (p0, p1), (n0, n1) = stem_windows(plan)
    ctx = round(options.stem_context_seconds * sr)
    t_split, stems, t_split_whole = timed(
        lambda: (split_window(splitter, a, p0, p1, ctx), split_window(splitter, nb, n0, n1, ctx)),
        max(1, args.repeat // 2),
        lambda: (splitter.split(a.samples, sr), splitter.split(nb.samples, sr)),
    )
    rows.append((f"split ({splitter.name}, overlap windows)", t_split, "split whole segments", t_split_whole))
    sa, sb = stems  # type: ignore[misc]

    def chain_crossfade() -> tuple[Audio, list[Window]]:
        p = plan_transition(a, ga, nb, ngb, options)
        return assemble([a, nb], [p], [render_transition(p, a, nb, sa, sb)])

    t_fade, joined, t_naive = timed(
        chain_crossfade, args.repeat, lambda: linear_crossfade_join(a, b, options.crossfade_seconds)
    )
    rows.append(("crossfade (plan+render+assemble)", t_fade, "naive linear crossfade", t_naive))
    track, seams = joined  # type: ignore[misc]

    # The cost of rhythm precision, per seam: each step beside the same step without it.
    t_metrics, scores, t_plain_scores = timed(
        lambda: score_transition(track, *seams[0]),
        args.repeat,
        lambda: score_transition(track, *seams[0], rhythm=False),
    )
    rows.append(("metrics (4 scores + clicks + rhythm)", t_metrics, "none", None))
    parts = (t_beats, t_stretch, t_split, t_fade, t_metrics)
    total = Timing(sum(t.wall for t in parts), sum(t.cpu for t in parts))
    rows.append(("total", total, "naive linear crossfade", t_naive))
    unlocked = TransitionOptions(phase_lock=False)
    t_lock, _, t_unlock = timed(
        lambda: plan_transition(a, ga, nb, ngb, options),
        args.repeat,
        lambda: plan_transition(a, ga, nb, ngb, unlocked),
    )
    rows.append(("phase lock: plan (locked)", t_lock, "plan (beats only)", t_unlock))
    rows.append(("rhythm: scores with rhythm", t_metrics, "scores without rhythm", t_plain_scores))
    flat = dataclasses.replace(plan, hold_level=False)

    def held() -> tuple[Audio, Audio]:
        glides = level_glides([a.samples, nb.samples], [plan], sr, options.level_glide_seconds)
        return render_transition(plan, a, nb, sa, sb, gains=(glides[0], glides[1])), with_gain(nb, glides[1])

    t_level, _, t_flat = timed(held, args.repeat, lambda: render_transition(flat, a, nb, sa, sb))
    rows.append(("level: glide + held render", t_level, "render without", t_flat))
    mixed = render_transition(flat, a, nb, sa, sb).samples
    context = round(CONTEXT_SECONDS * sr)
    before, after = (
        a.samples[:, plan.prev_start - context : plan.prev_start],
        nb.samples[:, plan.next_stop : plan.next_stop + context],
    )
    t_hold, _, t_hold_once = timed(
        lambda: hold_level_gain(mixed, before, after, sr),
        args.repeat,
        lambda: hold_level_gain(mixed, before, after, sr, passes=1),
    )
    rows.append((f"level hold: {HOLD_PASSES} passes", t_hold, "one pass", t_hold_once))
    drifting = _drifting_clip(args.seconds)
    if drifting is not None:
        grid = analyze_beats(drifting)
        target = grid.bpm * 0.97
        t_map, _, t_avg = timed(
            lambda: align_segment(drifting, grid, target, time_map=True),
            max(1, args.repeat // 2),
            lambda: align_segment(drifting, grid, target),
        )
        rows.append(("time map: stretch (drifting 4 %)", t_map, "stretch at average rate", t_avg))

    print(
        f"one transition, two {args.seconds:g} s stereo segments at {sr} Hz (118 -> 126 BPM), median of "
        f"{args.repeat}, each step and its baseline run in turn; wall and CPU seconds"
    )
    print(
        f"{'stage':36} {'ours s':>8} {'cpu s':>8}  {'baseline':26} {'base s':>8} {'cpu s':>8} "
        f"{'ours/base':>10} {'cpu':>7}"
    )
    for name, ours, base_name, base in rows:
        if base is None:
            tail = f"{'-':>8} {'-':>8} {'-':>10} {'-':>7}"
        else:
            cpu = f"{ours.cpu / base.cpu:7.2f}" if base.cpu > 0 else f"{'-':>7}"
            tail = f"{base.wall:8.4f} {base.cpu:8.4f} {ours.wall / base.wall:10.2f} {cpu}"
        print(f"{name:36} {ours.wall:8.4f} {ours.cpu:8.4f}  {base_name:26} {tail}")
    print(f"seam: {'passed' if scores.passed else 'FAILED ' + '; '.join(scores.failures)}")  # type: ignore[attr-defined]
    print(
        f"real-time factor of the chain: {2 * args.seconds / total.wall:.1f}x (seconds of input per second of work)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
