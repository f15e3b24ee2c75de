"""Rendering one seam's overlap: `render_transition(plan, prev, nxt, stems...) -> Audio`; and every
seam of a track with the level glides, assembled: `render_track(segments, plans, stems, glide) ->
(Audio, [Window], [level step dB])`, what `join` and the pipeline's `soundtrack` both run.

A stem-aware crossfade (drums/other/vocals cross with the plan's curve, the bass changes sides on a
beat, band-limited to `BASS_SWAP_CUTOFF_HZ`) when the plan asks for it and stems of both sides are
given, else a plain crossfade; then, when the plan holds the level (`seam_level.hold_level`), lifted
where it falls below the level its sides have just outside it. The output is exactly
`plan.overlap_frames` long.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from musicgen_pipeline.audio.crossfade import crossfade, stem_aware_crossfade
from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.audio.seam_level import CONTEXT_SECONDS, arrival_db, hold_level, level_glides
from musicgen_pipeline.audio.seam_plan import TransitionPlan
from musicgen_pipeline.audio.stems import Stems, with_residual_other
from musicgen_pipeline.audio.timeline import assemble
from musicgen_pipeline.audio.window import Window


def _window_stems(stems: Stems, audio: Audio, window: Window, side: str) -> Stems:
    """Accept stems of the whole segment or of exactly the window; return the window's, summing to the mix."""
    out: Stems = {}
    for name, value in stems.items():
        arr = np.atleast_2d(np.asarray(value, dtype=np.float32))
        if arr.shape[1] == audio.frames:
            arr = window.of(arr)
        elif arr.shape[1] != window.length:
            raise ValueError(
                f"{side} stem {name!r} has {arr.shape[1]} frames; expected the segment's {audio.frames} "
                f"or the window's {window.length}"
            )
        if arr.shape[0] != audio.channels:
            arr = np.repeat(arr.mean(axis=0, keepdims=True), audio.channels, axis=0)
        out[name] = arr
    return with_residual_other(out, window.of(audio.samples))


BASS_SWAP_CUTOFF_HZ = 300.0
# The bass band's level around each frame, over which the swapped line is levelled to the crossfade's
# (`crossfade.bass_swap_gains`): the loudness measure's 400 ms.
BASS_LEVEL_SECONDS = 0.4


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


def with_gain(audio: Audio, gain: np.ndarray | None) -> Audio:
    """`audio` times a per-frame gain (shape (frames,)); `audio` itself when `gain` is None."""
    if gain is None:
        return audio
    return Audio((audio.samples * gain).astype(np.float32), audio.sample_rate)


def _gained(samples: np.ndarray, gain: np.ndarray | None, window: Window) -> np.ndarray:
    """`window` of a side's (channels, frames) `samples` times that window of its gain envelope."""
    return window.of(samples) if gain is None else (window.of(samples) * window.of(gain)).astype(np.float32)


def _scaled(stems: Stems, gain: np.ndarray | None, window: Window) -> Stems:
    """A side's window stems times that window of its gain envelope."""
    return stems if gain is None else {k: (v * window.of(gain)).astype(np.float32) for k, v in stems.items()}


def render_transition(
    plan: TransitionPlan,
    prev: Audio,
    nxt: Audio,
    prev_stems: Stems | None = None,
    next_stems: Stems | None = None,
    *,
    gains: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> Audio:
    """The overlap's audio (`plan.overlap_frames` long): a stem-aware crossfade when the plan asks for it
    and stems of both sides are given (whole-segment stems or the `stem_windows` ones), else a plain
    crossfade with the plan's curve. `gains`: each side's gain envelope over its whole segment
    (`seam_level.level_glides`; None: none), applied to the audio and its stems alike."""
    if prev.channels != nxt.channels:
        raise ValueError(f"channel counts differ: {prev.channels} and {nxt.channels}")
    a = _gained(prev.samples, gains[0], plan.prev_window)
    b = _gained(nxt.samples, gains[1], plan.next_window)
    if plan.stem_aware and prev_stems is not None and next_stems is not None:
        sa = _scaled(
            _window_stems(prev_stems, prev, plan.prev_window, "previous"), gains[0], plan.prev_window
        )
        sb = _scaled(_window_stems(next_stems, nxt, plan.next_window, "next"), gains[1], plan.next_window)
        sa = _band_limit_bass(sa, prev.sample_rate)
        sb = _band_limit_bass(sb, nxt.sample_rate)
        common = [k for k in sa if k in sb]
        if common and set(sa) == set(sb):
            mixed = stem_aware_crossfade(
                sa,
                sb,
                plan.bass_swap,
                plan.micro_fade_frames,
                plan.curve,
                bass_smooth=round(BASS_LEVEL_SECONDS * prev.sample_rate),
            )
            return _held(plan, prev, nxt, gains, mixed)
    return _held(plan, prev, nxt, gains, crossfade(a, b, plan.curve))


def _held(
    plan: TransitionPlan,
    prev: Audio,
    nxt: Audio,
    gains: tuple[np.ndarray | None, np.ndarray | None],
    mixed: np.ndarray,
) -> Audio:
    """The rendered overlap, lifted to its sides' level when the plan asks for it (`hold_level`): each
    side's level is measured on up to `CONTEXT_SECONDS` of it (with its gain) outside the overlap."""
    if not plan.hold_level:
        return Audio(mixed, prev.sample_rate)
    ctx = round(CONTEXT_SECONDS * prev.sample_rate)
    before = _gained(prev.samples, gains[0], Window(max(0, plan.prev_start - ctx), plan.prev_start))
    after = _gained(nxt.samples, gains[1], Window(plan.next_stop, min(nxt.frames, plan.next_stop + ctx)))
    return Audio(hold_level(mixed, before, after, prev.sample_rate, plan.curve), prev.sample_rate)


SeamStems = tuple[Stems | None, Stems | None]


def render_track(
    segments: Sequence[Audio],
    plans: Sequence[TransitionPlan],
    stems: Sequence[SeamStems] | None = None,
    glide_seconds: float = 0.0,
) -> tuple[Audio, list[Window], list[float]]:
    """Every seam of a track rendered and the track assembled: each incoming segment's level glide
    (`seam_level.level_glides` over `glide_seconds`), each overlap (`render_transition` with the
    glides; `stems[k]`: (prev's, nxt's) stems of seam k, or None), the glided segments joined
    (`timeline.assemble`). Returns the track, each overlap's frames in it, and each seam's level step
    (the incoming segment's gain on arrival, dB). One segment and no plans: that segment as it is."""
    glides = level_glides([s.samples for s in segments], plans, segments[0].sample_rate, glide_seconds)
    pairs = stems if stems is not None else [(None, None)] * len(plans)
    overlaps = [
        render_transition(plan, segments[k], segments[k + 1], *pairs[k], gains=(glides[k], glides[k + 1]))
        for k, plan in enumerate(plans)
    ]
    track, seams = assemble([with_gain(s, g) for s, g in zip(segments, glides, strict=True)], plans, overlaps)
    return track, seams, [arrival_db(g) for g in glides[1:]]
