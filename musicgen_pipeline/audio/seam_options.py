"""`TransitionOptions`: how seams are made (overlap length, beat alignment, tempo matching, stems,
curve, search radii). Validated on construction: a bad value raises `InputError` naming the field and
its limit. Plain data (`to_dict`); the caller (an entry point) decides the values, nothing here reads
settings.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from musicgen_pipeline.audio.crossfade import CURVES, DEFAULT_MICRO_FADE_SECONDS
from musicgen_pipeline.audio.rhythm import MAX_STRETCH
from musicgen_pipeline.errors import InputError

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
    phase_lock: after beat alignment, let the two sides' onsets decide which beats meet (bar
    position: prev's overlap start may move by one beat when no target is given, nxt's among its beats within
    `beat_search_seconds`) and shift nxt's start by the residual grid offset (up to
    `phase_lock_seconds`, from the onset envelopes' cross-correlation over the overlap; `phase_lock`).
    time_map: stretch a segment whose tempo drifts along a time map (its smoothed beats onto an even
    grid) instead of by its average tempo (`rhythm.align_segment`).
    hold_level: lift the overlap where it falls below the level its two sides have just outside it
    (a slow gain, at most `seam_level.MAX_LIFT_DB`, 1 at both ends; `seam_level.hold_level`).
    level_glide_seconds: the incoming segment arrives at the outgoing one's level (a step of at most
    `seam_level.MAX_GLIDE_DB`) and glides to its own over this many seconds after the overlap
    (`seam_level.level_glides`); 0: each segment keeps its own level and the seam steps.
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
    phase_lock: bool = True
    phase_lock_seconds: float = 0.035
    time_map: bool = True
    hold_level: bool = True
    level_glide_seconds: float = 8.0

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
            "phase_lock_seconds",
            "level_glide_seconds",
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
