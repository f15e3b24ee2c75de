"""The track's timeline: how long to generate each scene, where seams are aimed, how planned seams
and rendered overlaps are assembled into one track, and cutting it to length.

`plan_seams` plans every seam in order and returns each segment's offset on the timeline (the track
frame where its frame 0 would lie); `assemble` concatenates prev[:prev_start] + overlap + ... and
returns each overlap's `Window` in the joined track; `fit_to_length` cuts with a fade-out, never a
hard cut.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.audio.rhythm import BeatGrid
from musicgen_pipeline.audio.seam_options import TransitionOptions
from musicgen_pipeline.audio.seam_plan import TransitionPlan, plan_transition
from musicgen_pipeline.audio.window import Window
from musicgen_pipeline.errors import InputError

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


def assemble(
    segments: Sequence[Audio], plans: Sequence[TransitionPlan], overlaps: Sequence[Audio]
) -> tuple[Audio, list[Window]]:
    """Join segments with their rendered overlaps. Returns the track and each overlap's `Window` (its
    frames in the track). Raises `InputError` when two overlaps of one segment would cross (segment too short)."""
    if len(plans) != len(segments) - 1 or len(overlaps) != len(plans):
        raise ValueError(f"{len(segments)} segments need {len(segments) - 1} plans and overlaps")
    pieces: list[np.ndarray] = []
    seams: list[Window] = []
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
            seams.append(Window(position, position + overlaps[i].frames))
            position += overlaps[i].frames
            cursor = plans[i].next_stop
    return Audio(np.concatenate(pieces, axis=1), segments[0].sample_rate), seams
