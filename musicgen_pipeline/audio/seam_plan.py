"""Where one seam lies: `plan_transition -> TransitionPlan` (plain data, JSON via `to_dict`).

Overlap geometry: the joined track is prev[:prev_start] + overlap + nxt[next_start + overlap_frames:],
where the overlap mixes prev[prev_start : prev_start + n] (fading out) with nxt[next_start : next_start + n]
(fading in): `plan.prev_window` and `plan.next_window`. With beat alignment, prev_start is a beat of
prev and next_start a beat of nxt, so after tempo matching every beat of both sides coincides through
the overlap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from musicgen_pipeline.audio.crossfade import joint_zero_crossing_shift
from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.audio.rhythm import BeatGrid
from musicgen_pipeline.audio.seam_options import TransitionOptions
from musicgen_pipeline.audio.window import Window
from musicgen_pipeline.errors import InputError


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
    def prev_window(self) -> Window:
        """The frames of prev that fade out."""
        return Window(self.prev_start, self.prev_stop)

    @property
    def next_window(self) -> Window:
        """The frames of nxt that fade in."""
        return Window(self.next_start, self.next_stop)

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


def stem_windows(plan: TransitionPlan) -> tuple[Window, Window]:
    """(prev's window, nxt's window): the frames of each side the stem-aware crossfade needs stems for.
    Separate with `split_window(splitter, audio, window.start, window.stop, context)`."""
    return plan.prev_window, plan.next_window
