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
from musicgen_pipeline.audio.phase_lock import (
    ENVELOPE_RATE,
    CrossfadeLevel,
    beat_accents,
    fine_lag,
    onset_envelopes,
    pattern_score,
    strong_parity,
)
from musicgen_pipeline.audio.rhythm import BeatGrid, octave_ratio
from musicgen_pipeline.audio.seam_level import held_dip
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
    # Phase locking (`phase_lock`): how far (frames) nxt's start moved to meet prev's onsets, how many
    # beats each side's start moved for the bar position, and the two sides' pattern agreement.
    phase_shift_frames: int = 0
    prev_beat_shift: int = 0
    next_beat_shift: int = 0
    pattern_score: float = 0.0
    # Lift the overlap to the level its sides have around it (`seam_level.hold_level`).
    hold_level: bool = False

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
    def prev_end_trim(self) -> int:
        """Frames of prev after its overlap (not heard): where the seam's start moved back to a beat."""
        return self.prev_frames - self.prev_stop

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


@dataclass(frozen=True)
class _Lock:
    prev_start: int
    next_start: int
    shift: int = 0
    prev_beats: int = 0
    next_beats: int = 0
    score: float = 0.0


# Phase locking needs the same pulse on both sides: tempo matched (or equal) within this fraction.
LOCK_TEMPO_TOLERANCE = 0.02
# The residual shift needs onsets the two sides share: where their patterns agree less than this (a
# half-time groove into a rock one, 0.16-0.26 on the realistic pairs) the cross-correlation's peak is an
# accident of hats and chords, and following it moved the seam 23-27 ms off the beat (phase 0.07-0.14).
MIN_PATTERN_FOR_SHIFT = 0.3
# How much of each side next to the overlap decides which of its beats carry the strong attacks.
ACCENT_CONTEXT_SECONDS = 8.0


def _strong_beats(audio: Audio, beats: np.ndarray, lo: int, hi: int) -> set[int] | None:
    """The beats (frames) within [lo, hi) that carry the strong attacks when the grid counts twice the
    felt pulse there (`phase_lock.strong_parity`), else None."""
    near = beats[(beats >= lo) & (beats < hi)]
    parity = strong_parity(beat_accents(audio.samples, audio.sample_rate, near))
    return None if parity is None else {int(b) for b in near[parity::2]}


def _same_level(
    pairs: list[tuple[float, int, int]], strong_p: set[int] | None, strong_n: set[int] | None
) -> list[tuple[float, int, int]]:
    """The candidate pairs that put a strong beat on a strong beat (and a weak one on a weak one) when
    both sides' grids count twice their felt pulse; all of them otherwise (or when none would)."""
    if strong_p is None or strong_n is None:
        return pairs
    kept = [c for c in pairs if (c[1] in strong_p) == (c[2] in strong_n)]
    return kept or pairs


# Which beats meet also decides which stretch of each side's music the overlap covers, and so how loud
# the seam is (`CrossfadeLevel`): on the realistic pairs the candidates' dips range over 1-5 dB, more
# than any fade curve changes (the two sides are nearly uncorrelated there: the mix is within 0.25 dB
# of the sum of their powers). A bar position is worth a louder seam only where the onset patterns
# really agree (>= MIN_PATTERN_FOR_SHIFT, the shared onsets the residual shift needs too); below that
# their scores (0.0-0.3 between two different grooves) are noise, and following them put the drive
# and drifting seams on 3.6 and 2.0 dB candidates where 2.3 and 1.4 were free.
# LEVEL_TOLERANCE_DB: no candidate may dip more than the planner's default (prev's latest beat, nxt's
# first: the seam before phase locking) by more than this (about the prediction's own error; a
# self-join whose grid is 22 ms off needs its agreeing candidate, 0.1 dB louder in its dip, to lock).
# PATTERN_MARGIN: agreeing candidates within this of the best agree equally well.
# DIP_PREFERENCE_DB: the default stays unless another candidate dips at least this much less (a move
# trims prev's end and shifts nxt's chords against the 8 s contexts the scores read; on the synthetic
# 118 -> 126 BPM join a one-beat move for 0.3 dB put the seam 0.08 beat off and halved its chroma score).
LEVEL_TOLERANCE_DB = 0.25
PATTERN_MARGIN = 0.05
DIP_PREFERENCE_DB = 0.5


def _bar_position(
    scored: list[tuple[float, int, int]],
    level: CrossfadeLevel,
    p0: int,
    n0: int,
    n: int,
    default: tuple[int, int] | None = None,
) -> tuple[float, int, int]:
    """Of the (pattern score, prev start, nxt start) candidates, the one whose crossfade keeps the level
    best among those that dip at most `LEVEL_TOLERANCE_DB` more than the default (p0, n0); where some of
    those agree in their onset patterns (>= `MIN_PATTERN_FOR_SHIFT`), among the agreeing ones within
    `PATTERN_MARGIN` of the best; `default` (the default's (prev start, nxt start) as made, when it is
    a candidate) wins ties within `DIP_PREFERENCE_DB` (see the constants)."""
    dips = {(p, q): level.dip(p, q, n) for _, p, q in scored}
    limit = level.dip(p0, n0, n) + LEVEL_TOLERANCE_DB
    safe = [c for c in scored if dips[c[1], c[2]] <= limit] or scored
    top = max(c[0] for c in safe)
    agree = [c for c in safe if c[0] >= max(top - PATTERN_MARGIN, MIN_PATTERN_FOR_SHIFT)]

    def cost(c: tuple[float, int, int]) -> tuple[float, float]:
        return dips[c[1], c[2]] - (DIP_PREFERENCE_DB if (c[1], c[2]) == default else 0.0), -c[0]

    return min(agree or safe, key=cost)


# A bar position whose crossfade leaves a hole the level hold cannot fill (`seam_level.held_dip`, more
# than this on either meter) is not taken while another leaves none. The mono-sum dips `_bar_position`
# weighs are those of the unheld crossfade: on the realistic dance pair they preferred a position
# whose two quiet bars coincide mid-overlap, 6 dB under the sides, where the hold lifts 4 dB at most
# and less under a kick near the music's peak (4.0 dB left, K-weighted); the position one beat over
# leaves 0.8 dB. Under the limit, the hold fills what each position leaves and the choice
# stays with `_bar_position` (the held predictions differ by tenths of a dB there, less than their error).
HOLE_DB = 1.5


def _without_holes(
    made: list[tuple[float, int, int, int]], prev: Audio, nxt: Audio, n: int, curve: str
) -> list[tuple[float, int, int, int]]:
    """The (score, prev start, nxt start, shifted nxt start) candidates whose held crossfade leaves no
    hole deeper than `HOLE_DB`; all of them when every one does."""
    sr = prev.sample_rate
    kept = [c for c in made if held_dip(prev.samples, nxt.samples, c[1], c[3], n, sr, curve) <= HOLE_DB]
    return kept or made


def _phase_lock(
    prev: Audio,
    nxt: Audio,
    p_ok: np.ndarray,
    n_ok: np.ndarray,
    p0: int,
    n0: int,
    n: int,
    prev_grid: BeatGrid,
    next_grid: BeatGrid,
    options: TransitionOptions,
) -> _Lock:
    """Choose which beats meet (prev's start within one beat of `p0`, nxt's among `n_ok`): strong beat
    on strong beat when both grids count twice the felt pulse (`_same_level`), then by the level their
    crossfade keeps and, where the two sides' onset patterns agree, by that agreement
    (`_bar_position`), then shift nxt's start by the residual offset of the two sides' onsets
    (`phase_lock.fine_lag`). Unchanged when the tempi differ."""
    sr = prev.sample_rate
    rate, _ = octave_ratio(next_grid.bpm, prev_grid.bpm)
    if prev_grid.bpm <= 0 or abs(rate - 1.0) > LOCK_TEMPO_TOLERANCE:
        return _Lock(p0, n0)
    period = 60.0 / prev_grid.bpm * sr
    hop = max(1, round(sr / ENVELOPE_RATE))
    max_lag = max(1, round(min(options.phase_lock_seconds, 0.25 * period / sr) * ENVELOPE_RATE))
    reach = max_lag * hop
    p_cands = sorted({int(p) for p in p_ok if abs(int(p) - p0) <= 1.05 * period})
    n_cands = sorted(int(q) for q in n_ok)[:4]
    if p0 not in p_cands:
        p_cands.append(p0)
    if n0 not in n_cands:
        n_cands.append(n0)
    # Envelopes once per side over every candidate window (nxt's widened by the fine-lag reach).
    p_lo, p_hi = min(p_cands), max(p_cands) + n
    n_lo, n_hi = max(0, min(n_cands) - reach), min(nxt.frames, max(n_cands) + n + reach)
    env_p = onset_envelopes(prev.samples[:, p_lo:p_hi], sr)
    env_n = onset_envelopes(nxt.samples[:, n_lo:n_hi], sr)
    width = n // hop

    def window(env: np.ndarray, lo: int, start: int, extra: int = 0) -> np.ndarray:
        i = (start - lo) // hop - extra
        return env[:, max(0, i) : i + width + 2 * extra] if i >= 0 else np.zeros((2, 0))

    def score(p: int, q: int) -> float:
        return pattern_score(window(env_p, p_lo, p), window(env_n, n_lo, q))

    context = round(ACCENT_CONTEXT_SECONDS * sr)
    strong_p = _strong_beats(prev, _beats_frames(prev_grid, sr), p0 - context, p0 + n)
    strong_n = _strong_beats(nxt, _beats_frames(next_grid, sr), n0, n0 + n + context)
    scored = _same_level([(score(p, q), p, q) for p in p_cands for q in n_cands], strong_p, strong_n)

    def residual(value: float, p: int, q: int) -> int:
        """nxt's residual shift (frames) for the candidate: only where the patterns agree."""
        if value < MIN_PATTERN_FOR_SHIFT:
            return 0
        lag, peak = fine_lag(window(env_p, p_lo, p), window(env_n, n_lo, q, max_lag), max_lag)
        shift = round(lag * hop) if peak > 0.1 else 0
        return shift if q + shift >= 0 and q + shift + n <= nxt.frames else 0

    # Each candidate is judged as the seam it would make: with its residual shift (a self-join 22 ms
    # off meets itself in phase once shifted, but combs and dips before).
    made = [(v, p, q, q + residual(v, p, q)) for v, p, q in scored]
    if options.hold_level:
        made = _without_holes(made, prev, nxt, n, options.curve)
    value, p, start = _bar_position(
        [(v, p, shifted) for v, p, _, shifted in made],
        CrossfadeLevel(prev.samples, nxt.samples, sr, options.curve),
        p0,
        n0,
        n,
        next(((p, shifted) for _, p, q, shifted in made if (p, q) == (p0, n0)), None),
    )
    q = next(c[2] for c in made if (c[1], c[3]) == (p, start))
    shift = start - q
    return _Lock(
        prev_start=p,
        next_start=q + shift,
        shift=shift,
        prev_beats=round((p - p0) / period),
        next_beats=round((q - n0) / period),
        score=float(value),
    )


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
    lock = _Lock(p0, n0)
    if aligned and options.phase_lock and prev_grid is not None and next_grid is not None:
        # Aimed at a target (a scene boundary), prev's start stays on the beat nearest it; only the
        # tail of a join (no target) may move by a beat for the bar position.
        movable = p_ok if prev_target_start is None else np.array([p0])
        lock = _phase_lock(prev, nxt, movable, n_ok, p0, n0, n, prev_grid, next_grid, options)
        p0, n0 = lock.prev_start, lock.next_start

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
        phase_shift_frames=lock.shift,
        prev_beat_shift=lock.prev_beats,
        next_beat_shift=lock.next_beats,
        pattern_score=round(lock.score, 4),
        hold_level=options.hold_level,
    )


def stem_windows(plan: TransitionPlan) -> tuple[Window, Window]:
    """(prev's window, nxt's window): the frames of each side the stem-aware crossfade needs stems for.
    Separate with `split_window(splitter, audio, window.start, window.stop, context)`."""
    return plan.prev_window, plan.next_window
