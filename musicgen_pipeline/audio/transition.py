"""The transition chain: beats -> target tempo -> tempo match -> plan -> stems -> crossfade -> scores.

Exposed at the granularity the Dagster pipeline needs, so each step can be its own asset:

1. `analyze_beats(audio) -> BeatGrid` per segment (re-exported from `rhythm`).
2. `choose_target_bpm(grids) -> float` for the track (the first scene's tempo by default).
3. `align_segment(audio, grid, target_bpm) -> (Audio, BeatGrid)`: stretched audio and its scaled grid.
4. `plan_transition(prev, prev_grid, nxt, next_grid, options) -> TransitionPlan`: plain data saying
   which frames of each side overlap, where the bass is swapped; `to_dict()` / `from_dict()`.
5. `stem_windows(plan) -> ((a, b), (c, d))`: the frame ranges of each side that need stems; separate
   only those (`stems.split_window`, with any `StemSplitter`: DSP or Demucs) and store them.
6. `render_transition(plan, prev, nxt, prev_stems, next_stems) -> Audio`: the mixed overlap.
7. `assemble(segments, plans, overlaps) -> (Audio, seams)`: the joined track and each overlap's frames.
8. `score_transition` (metrics) on the joined track per seam; `join_segments` runs 1-8 in one call.

`score_seam(prev, nxt)` is the fast preview the quality loop runs right after generating a segment.
Final loudness normalisation is a separate call (`loudness.normalize_loudness`).

Overlap geometry: the joined track is prev[:prev_start] + overlap + nxt[next_start + overlap_frames:],
where overlap mixes prev[prev_start : prev_start + n] (fading out) with nxt[next_start : next_start + n]
(fading in). With beat alignment, prev_start is a beat of prev and next_start a beat of nxt, so after
tempo matching every beat of both sides coincides through the overlap.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from musicgen_pipeline.audio.crossfade import (
    CURVES,
    DEFAULT_MICRO_FADE_SECONDS,
    crossfade,
    fade_curves,
    joint_zero_crossing_shift,
    stem_aware_crossfade,
)
from musicgen_pipeline.audio.io import Audio, check_audio, resample
from musicgen_pipeline.audio.metrics import QualityThresholds, TransitionScores, score_transition
from musicgen_pipeline.audio.rhythm import (
    MAX_STRETCH,
    BeatGrid,
    align_segment,
    analyze_beats,
    choose_target_bpm,
    octave_ratio,
)
from musicgen_pipeline.audio.stems import Stems, StemSplitter, split_window, with_residual_other
from musicgen_pipeline.errors import InputError

__all__ = [
    "BeatGrid",
    "JoinResult",
    "SegmentReport",
    "TransitionOptions",
    "TransitionPlan",
    "TransitionReport",
    "align_segment",
    "analyze_beats",
    "assemble",
    "choose_target_bpm",
    "fit_to_length",
    "join_segments",
    "plan_seams",
    "plan_transition",
    "render_transition",
    "scene_boundaries",
    "scene_generation_seconds",
    "score_seam",
    "stem_windows",
]

MAX_CROSSFADE_SECONDS = 30.0


@dataclass(frozen=True)
class TransitionOptions:
    """How seams are made. Defaults are the full chain.

    crossfade_seconds: overlap length. beat_align: start the overlap on a beat of each side.
    tempo_match: stretch segments to the track tempo. stem_aware: per-stem crossfade with bass swap
    (needs a splitter or stems; otherwise a plain crossfade). zero_cross: nudge both cut points together
    (by up to `zero_cross_seconds`) to zero crossings. beat_search_seconds: how far back from the end of
    the previous segment (and into the next) the overlap may move to land on beats. curve: equal_power
    (the default, cos/sin), linear, or adaptive (equal power corrected for the measured correlation of
    the two sides, per stem: no +3 dB bump when both sides carry the same material).
    """

    crossfade_seconds: float = 2.0
    beat_align: bool = True
    tempo_match: bool = True
    stem_aware: bool = True
    zero_cross: bool = True
    beat_search_seconds: float = 1.5
    zero_cross_seconds: float = 0.003
    micro_fade_seconds: float = DEFAULT_MICRO_FADE_SECONDS
    stem_context_seconds: float = 1.0
    curve: str = "equal_power"
    max_stretch: float = MAX_STRETCH
    target_bpm_policy: str = "first"

    def __post_init__(self) -> None:
        if not (isinstance(self.crossfade_seconds, (int, float)) and math.isfinite(self.crossfade_seconds)):
            raise InputError(f"crossfade_seconds={self.crossfade_seconds!r} is not a number")
        if not 0.01 <= self.crossfade_seconds <= MAX_CROSSFADE_SECONDS:
            raise InputError(
                f"crossfade_seconds={self.crossfade_seconds} is outside [0.01, {MAX_CROSSFADE_SECONDS}] seconds"
            )
        for name in (
            "beat_search_seconds",
            "zero_cross_seconds",
            "micro_fade_seconds",
            "stem_context_seconds",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"{name}={value} must be a number >= 0")
        if self.curve not in CURVES:
            raise InputError(f"curve={self.curve!r} must be one of {', '.join(CURVES)}")
        if self.target_bpm_policy not in ("first", "median"):
            raise InputError(f"target_bpm_policy={self.target_bpm_policy!r} must be 'first' or 'median'")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TransitionPlan:
    """Where one seam lies, in frames of each side (plain data; JSON via `to_dict`).

    Overlap = prev[prev_start : prev_start + overlap_frames] with nxt[next_start : next_start + overlap_frames].
    `bass_swap` is the frame (from the overlap's start) where the bass changes sides, on a beat when
    `bass_swap_on_beat`; None when no swap is planned (stem_aware off).
    """

    sample_rate: int
    prev_frames: int
    next_frames: int
    prev_start: int
    next_start: int
    overlap_frames: int
    bass_swap: int | None
    beat_aligned: bool
    bass_swap_on_beat: bool
    zero_cross_shift: int
    prev_bpm: float
    next_bpm: float
    stem_aware: bool
    curve: str
    micro_fade_frames: int

    @property
    def prev_stop(self) -> int:
        return self.prev_start + self.overlap_frames

    @property
    def next_stop(self) -> int:
        return self.next_start + self.overlap_frames

    @property
    def overlap_seconds(self) -> float:
        return self.overlap_frames / self.sample_rate

    @property
    def boundary_seconds_in_prev(self) -> float:
        """Centre of the overlap, in seconds from the start of prev."""
        return (self.prev_start + self.overlap_frames / 2) / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["prev_stop"] = self.prev_stop
        data["next_stop"] = self.next_stop
        data["overlap_seconds"] = round(self.overlap_seconds, 6)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransitionPlan:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


def _beats_frames(grid: BeatGrid | None, sample_rate: int) -> np.ndarray:
    if grid is None or len(grid) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.round(grid.beat_times * sample_rate).astype(np.int64)


def plan_transition(
    prev: Audio,
    prev_grid: BeatGrid | None,
    nxt: Audio,
    next_grid: BeatGrid | None,
    options: TransitionOptions | None = None,
    prev_target_start: int | None = None,
) -> TransitionPlan:
    """Plan the seam between `prev` and `nxt` (already tempo-matched when that is wanted).

    Without beats (or with beat_align off) the overlap is the last `crossfade_seconds` of prev and the
    first of nxt. With beats, the overlap starts on nxt's first beat (within `beat_search_seconds`) and on
    the latest beat of prev that lets the overlap fit (within `beat_search_seconds` before the end).

    `prev_target_start`: the frame of prev where the overlap should ideally start (e.g. a scene boundary
    minus half the crossfade). None keeps the tail behaviour above. With a target, the overlap starts on
    the beat of prev nearest to it within `beat_search_seconds` (when aligned), else exactly on it; either
    way clamped to [0, prev.frames - overlap] (a segment too short for its target ends the overlap at its
    end; the caller sees it in `prev_start`).
    Raises `InputError` when the overlap is longer than either segment.
    """
    options = options or TransitionOptions()
    sr = prev.sample_rate
    if nxt.sample_rate != sr:
        raise ValueError(f"sample rates differ: {sr} and {nxt.sample_rate} (resample first)")
    n = round(options.crossfade_seconds * sr)
    for name, seg in (("previous", prev), ("next", nxt)):
        if n >= seg.frames:
            raise InputError(
                f"crossfade of {options.crossfade_seconds:g} s is longer than the {name} segment "
                f"({seg.duration:.3f} s); use a shorter crossfade"
            )
    last = prev.frames - n
    target = None if prev_target_start is None else int(min(max(int(prev_target_start), 0), last))
    p0, n0 = (last if target is None else target), 0
    aligned = False
    search = round(options.beat_search_seconds * sr)
    if options.beat_align:
        pb = _beats_frames(prev_grid, sr)
        nb = _beats_frames(next_grid, sr)
        fits = (pb + n <= prev.frames) & (pb >= 0)
        if prev_target_start is None:
            p_ok = pb[fits & (pb >= prev.frames - n - search)]
        else:
            p_ok = pb[fits & (np.abs(pb - int(prev_target_start)) <= search)]
        n_ok = nb[(nb >= 0) & (nb <= search) & (nb + n <= nxt.frames)]
        if p_ok.size and n_ok.size:
            if prev_target_start is None:
                p0 = int(p_ok.max())
            else:
                p0 = int(p_ok[np.argmin(np.abs(p_ok - int(prev_target_start)))])
            n0, aligned = int(n_ok.min()), True

    shift = 0
    if options.zero_cross:
        radius = round(options.zero_cross_seconds * sr)
        # Cut points: where prev stops (its last overlapped frame) and where nxt starts.
        shift = joint_zero_crossing_shift(prev.samples, p0 + n - 1, nxt.samples, n0, radius)
        if p0 + shift < 0 or p0 + n + shift > prev.frames or n0 + shift < 0 or n0 + n + shift > nxt.frames:
            shift = 0
        p0, n0 = p0 + shift, n0 + shift

    swap: int | None = None
    on_beat = False
    if options.stem_aware:
        swap = n // 2
        candidates: list[int] = []
        nb = _beats_frames(next_grid, sr) - n0
        candidates.extend(int(b) for b in nb[(nb > 0) & (nb < n)])
        if not candidates:
            pb = _beats_frames(prev_grid, sr) - p0
            candidates.extend(int(b) for b in pb[(pb > 0) & (pb < n)])
        if candidates:
            swap = min(candidates, key=lambda b: abs(b - n / 2))
            on_beat = True

    return TransitionPlan(
        sample_rate=sr,
        prev_frames=prev.frames,
        next_frames=nxt.frames,
        prev_start=int(p0),
        next_start=int(n0),
        overlap_frames=int(n),
        bass_swap=swap,
        beat_aligned=aligned,
        bass_swap_on_beat=on_beat,
        zero_cross_shift=int(shift),
        prev_bpm=float(prev_grid.bpm) if prev_grid is not None else 0.0,
        next_bpm=float(next_grid.bpm) if next_grid is not None else 0.0,
        stem_aware=options.stem_aware,
        curve=options.curve,
        micro_fade_frames=round(options.micro_fade_seconds * sr),
    )


# Scenes are generated longer than their share of the track so every seam can sit on its scene boundary:
# half a crossfade on each shared side, `beat_search_seconds` for beat snapping (nxt's overlap starts on its
# first beat, prev's on the beat nearest the target), and, for scenes that tempo matching may speed up
# (all but the first, whose tempo is the track's), a factor 1 + max_stretch: a segment sped up by the
# largest rate allowed (1.25) still covers its share. A smaller margin was tried: 10 % left the demo's
# tiny-random scene 2 (sped up 1.185x) short. Model time is the cost: the demo (20+25+15 s, 2 s crossfade)
# generates 22.5 + 35.625 + 21.875 = 80.0 s for 60 s (scenes that end up slower are trimmed).
END_FADE_SECONDS = 1.5


def scene_generation_seconds(durations: Sequence[float], options: TransitionOptions) -> list[float]:
    """Seconds of audio to generate per scene so that the joined track can last `sum(durations)` with
    each seam centred on its scene boundary (see the note above)."""
    out = []
    last = len(durations) - 1
    for k, d in enumerate(durations):
        seconds = float(d)
        if k > 0:
            seconds += options.crossfade_seconds / 2
        if k < last:
            seconds += options.crossfade_seconds / 2
        if last > 0 and options.beat_align:
            seconds += options.beat_search_seconds
        if k > 0 and options.tempo_match:
            seconds *= 1.0 + options.max_stretch
        out.append(round(seconds, 3))
    return out


def scene_boundaries(durations: Sequence[float]) -> list[float]:
    """T_k = d_0 + ... + d_{k-1} for k = 1..n-1: where each seam's overlap should be centred."""
    return [float(t) for t in np.cumsum(np.asarray(durations, dtype=np.float64))[:-1]]


def plan_seams(
    segments: Sequence[Audio],
    grids: Sequence[BeatGrid | None],
    options: TransitionOptions,
    boundaries: Sequence[float] | None = None,
) -> tuple[list[TransitionPlan], list[int]]:
    """Plan every seam of a track; returns the plans and each segment's timeline offset (the track frame
    where its frame 0 would lie; segment k's audio is heard from offset_k + next_start onwards).

    With `boundaries` (seconds into the track, one per seam) seam k's overlap is aimed so its centre lies
    on boundaries[k]: prev's target frame is boundaries[k] - crossfade/2 - offset_prev. Without, each
    overlap is prev's tail (`join_segments`' end-to-end meaning)."""
    if boundaries is not None and len(boundaries) != len(segments) - 1:
        raise ValueError(
            f"{len(segments)} segments need {len(segments) - 1} boundaries, got {len(boundaries)}"
        )
    sr = segments[0].sample_rate
    n = round(options.crossfade_seconds * sr)
    plans: list[TransitionPlan] = []
    offsets = [0]
    for k in range(len(segments) - 1):
        target = None
        if boundaries is not None:
            target = round(boundaries[k] * sr - n / 2) - offsets[k]
        plan = plan_transition(segments[k], grids[k], segments[k + 1], grids[k + 1], options, target)
        plans.append(plan)
        offsets.append(offsets[k] + plan.prev_start - plan.next_start)
    return plans, offsets


def fit_to_length(audio: Audio, frames: int, fade_seconds: float = END_FADE_SECONDS) -> Audio:
    """`audio` cut to exactly `frames`, ending in a fade-out (min(fade_seconds, a quarter of the track),
    equal-power shape) when something was cut, never a hard cut. Audio already no longer is returned as
    is (the caller decides what a short track means)."""
    if frames <= 0:
        raise ValueError(f"frames={frames} must be > 0")
    if audio.frames <= frames:
        return audio
    out = audio.samples[:, :frames].copy()
    fade = min(round(fade_seconds * audio.sample_rate), frames // 4)
    if fade > 1:
        out[:, frames - fade :] *= np.cos(np.linspace(0.0, np.pi / 2, fade, dtype=np.float64)).astype(
            np.float32
        )
    return Audio(out, audio.sample_rate)


def stem_windows(plan: TransitionPlan) -> tuple[tuple[int, int], tuple[int, int]]:
    """((prev_start, prev_stop), (next_start, next_stop)): the frames of each side the stem-aware
    crossfade needs stems for. Separate with `split_window(splitter, audio, start, stop, context)`."""
    return (plan.prev_start, plan.prev_stop), (plan.next_start, plan.next_stop)


def _window_stems(stems: Stems, audio: Audio, start: int, stop: int, side: str) -> Stems:
    """Accept stems of the whole segment or of exactly the window; return the window's, summing to the mix."""
    out: Stems = {}
    for name, value in stems.items():
        arr = np.atleast_2d(np.asarray(value, dtype=np.float32))
        if arr.shape[1] == audio.frames:
            arr = arr[:, start:stop]
        elif arr.shape[1] != stop - start:
            raise ValueError(
                f"{side} stem {name!r} has {arr.shape[1]} frames; expected the segment's {audio.frames} "
                f"or the window's {stop - start}"
            )
        if arr.shape[0] != audio.channels:
            arr = np.repeat(arr.mean(axis=0, keepdims=True), audio.channels, axis=0)
        out[name] = arr
    return with_residual_other(out, audio.samples[:, start:stop])


BASS_SWAP_CUTOFF_HZ = 300.0


def _band_limit_bass(stems: Stems, sample_rate: int) -> Stems:
    """Only low frequencies change sides at the bass swap: whatever a splitter left above
    `BASS_SWAP_CUTOFF_HZ` in its bass stem (a weak or random model's hiss, a kick's click) moves to
    `other`, which crossfades smoothly. The stems still sum to the mix."""
    if "bass" not in stems or stems["bass"].shape[1] < 32:
        return stems
    from scipy import signal

    mix = sum(stems.values())
    sos = signal.butter(4, BASS_SWAP_CUTOFF_HZ, btype="lowpass", fs=sample_rate, output="sos")
    pad = min(stems["bass"].shape[1] - 1, 3 * round(sample_rate / BASS_SWAP_CUTOFF_HZ))
    low = signal.sosfiltfilt(sos, stems["bass"].astype(np.float64), axis=1, padlen=pad)
    out = dict(stems)
    out["bass"] = low.astype(np.float32)
    return with_residual_other(out, mix)


def render_transition(
    plan: TransitionPlan,
    prev: Audio,
    nxt: Audio,
    prev_stems: Stems | None = None,
    next_stems: Stems | None = None,
) -> Audio:
    """The overlap's audio (`plan.overlap_frames` long): a stem-aware crossfade when the plan asks for it
    and stems of both sides are given (whole-segment stems or the `stem_windows` ones), else a plain
    crossfade with the plan's curve."""
    if prev.channels != nxt.channels:
        raise ValueError(f"channel counts differ: {prev.channels} and {nxt.channels}")
    a = prev.samples[:, plan.prev_start : plan.prev_stop]
    b = nxt.samples[:, plan.next_start : plan.next_stop]
    if plan.stem_aware and prev_stems is not None and next_stems is not None:
        sa = _window_stems(prev_stems, prev, plan.prev_start, plan.prev_stop, "previous")
        sb = _window_stems(next_stems, nxt, plan.next_start, plan.next_stop, "next")
        sa = _band_limit_bass(sa, prev.sample_rate)
        sb = _band_limit_bass(sb, nxt.sample_rate)
        common = [k for k in sa if k in sb]
        if common and set(sa) == set(sb):
            mixed = stem_aware_crossfade(sa, sb, plan.bass_swap, plan.micro_fade_frames, plan.curve)
            return Audio(mixed, prev.sample_rate)
    return Audio(crossfade(a, b, plan.curve), prev.sample_rate)


def assemble(
    segments: Sequence[Audio], plans: Sequence[TransitionPlan], overlaps: Sequence[Audio]
) -> tuple[Audio, list[tuple[int, int]]]:
    """Join segments with their rendered overlaps. Returns the track and each overlap's [start, stop)
    frames in it. Raises `InputError` when two overlaps of one segment would cross (segment too short)."""
    if len(plans) != len(segments) - 1 or len(overlaps) != len(plans):
        raise ValueError(f"{len(segments)} segments need {len(segments) - 1} plans and overlaps")
    pieces: list[np.ndarray] = []
    seams: list[tuple[int, int]] = []
    position = 0
    cursor = 0  # where the current segment's own audio resumes
    for i, seg in enumerate(segments):
        stop = plans[i].prev_start if i < len(plans) else seg.frames
        if stop < cursor:
            raise InputError(
                f"segment {i + 1} ({seg.duration:.3f} s) is too short for its two crossfades "
                f"({plans[i - 1].overlap_seconds:g} s and {plans[i].overlap_seconds:g} s); use a shorter crossfade"
            )
        pieces.append(seg.samples[:, cursor:stop])
        position += stop - cursor
        if i < len(plans):
            pieces.append(overlaps[i].samples)
            seams.append((position, position + overlaps[i].frames))
            position += overlaps[i].frames
            cursor = plans[i].next_stop
    return Audio(np.concatenate(pieces, axis=1), segments[0].sample_rate), seams


@dataclass(frozen=True)
class SegmentReport:
    """One input segment: its tempo before and after tempo matching."""

    index: int
    duration: float
    bpm: float
    aligned_bpm: float
    stretch_rate: float
    aligned_duration: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class TransitionReport:
    """One seam in the joined track: where, tempi on both sides, scores, pass/fail."""

    index: int
    boundary_time: float  # centre of the overlap, seconds into the joined track
    overlap_start_time: float
    overlap_seconds: float
    bpm_before: float  # tempo of the segment before the seam, as played (after tempo matching)
    bpm_after: float  # tempo of the segment after the seam, as played
    bass_swap_time: float | None  # seconds into the joined track
    beat_aligned: bool
    stem_aware: bool
    scores: TransitionScores
    plan: TransitionPlan

    @property
    def passed(self) -> bool:
        return self.scores.passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "boundary_time": round(self.boundary_time, 4),
            "overlap_start_time": round(self.overlap_start_time, 4),
            "overlap_seconds": round(self.overlap_seconds, 4),
            "bpm_before": round(self.bpm_before, 3),
            "bpm_after": round(self.bpm_after, 3),
            "bass_swap_time": None if self.bass_swap_time is None else round(self.bass_swap_time, 4),
            "beat_aligned": self.beat_aligned,
            "stem_aware": self.stem_aware,
            **self.scores.to_dict(),
            "plan": self.plan.to_dict(),
        }


@dataclass(frozen=True)
class JoinResult:
    """The joined track (not yet loudness-normalised) and what happened at each seam."""

    audio: Audio
    transitions: list[TransitionReport]
    segments: list[SegmentReport]
    target_bpm: float
    stem_source: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.transitions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration": round(self.audio.duration, 4),
            "sample_rate": self.audio.sample_rate,
            "channels": self.audio.channels,
            "target_bpm": round(self.target_bpm, 3),
            "stem_source": self.stem_source,
            "passed": self.passed,
            "segments": [s.to_dict() for s in self.segments],
            "transitions": [t.to_dict() for t in self.transitions],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


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
            out, new_grid = align_segment(seg, grid, target, max_stretch=options.max_stretch)
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
    overlaps: list[Audio] = []
    context = round(options.stem_context_seconds * sr)
    for i, plan in enumerate(plans):
        prev_stems = next_stems = None
        if options.stem_aware and splitter is not None:
            clock = time.perf_counter()
            (a0, a1), (b0, b1) = stem_windows(plan)
            prev_stems = split_window(splitter, aligned[i], a0, a1, context)
            next_stems = split_window(splitter, aligned[i + 1], b0, b1, context)
            timings["split"] += time.perf_counter() - clock
        clock = time.perf_counter()
        overlaps.append(render_transition(plan, aligned[i], aligned[i + 1], prev_stems, next_stems))
        timings["crossfade"] += time.perf_counter() - clock

    clock = time.perf_counter()
    track, seams = assemble(aligned, plans, overlaps)
    timings["crossfade"] += time.perf_counter() - clock

    clock = time.perf_counter()
    transitions: list[TransitionReport] = []
    for i, (plan, (s0, s1)) in enumerate(zip(plans, seams, strict=True)):
        scores = score_transition(track, s0, s1, thresholds)
        stem_aware = plan.stem_aware and splitter is not None
        transitions.append(
            TransitionReport(
                index=i,
                boundary_time=(s0 + s1) / 2 / sr,
                overlap_start_time=s0 / sr,
                overlap_seconds=(s1 - s0) / sr,
                bpm_before=plan.prev_bpm,
                bpm_after=plan.next_bpm,
                bass_swap_time=(s0 + plan.bass_swap) / sr
                if stem_aware and plan.bass_swap is not None
                else None,
                beat_aligned=plan.beat_aligned,
                stem_aware=stem_aware,
                scores=scores,
                plan=plan,
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
    the bass swap changes little of what the scores see), then scores it. Seconds, not minutes, so the
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
            b, gb = align_segment(b, gb, ga.bpm, max_stretch=options.max_stretch)
    plan = plan_transition(a, ga, b, gb, options)
    overlap = render_transition(plan, a, b)
    track, seams = assemble([a, b], [plan], [overlap])
    return score_transition(track, seams[0][0], seams[0][1], thresholds)


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
