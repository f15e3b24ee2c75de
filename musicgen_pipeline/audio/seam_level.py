"""A seam's level: a slow gain that lifts the overlap where it falls below the level its two sides
have around it (`hold_level`), and a glide that brings the incoming segment in at the outgoing one's
level and moves it to its own over the following seconds (`level_glides`), as an engineer rides the
faders through a transition.

A crossfade keeps the power of what it mixes (`crossfade.fade_curves`); it cannot keep the level a
listener expects. Where the overlap falls in each clip's music decides that: a quiet bar at the end
of the outgoing clip, or an incoming clip that starts softly, leaves a hole of 1-3 dB at the mood
change (measured on the realistic pairs: at the quietest 400 ms the mix is within 0.25 dB of the
faded sides' summed power, so the hole is the music's, not the fade law's). `hold_level_gain`
measures each side's level where it is heard in full, just outside the overlap, and lifts the
overlap's short-term level (400 ms, the loudness measure's momentary window) up to what a crossfade
of two steady sides at those levels would give:

    target(t) = fade_out(t)^2 * P_before + fade_in(t)^2 * P_after

It only lifts (a loud overlap is left as it is), by at most `MAX_LIFT_DB`, never above the peaks
the music has around it, and its gain is 1 at both ends of the overlap (no step where the overlap
meets the audio either side).

The lift is measured again on the lifted overlap and what remains is lifted too (`HOLD_PASSES`): a
gain read off each frame's 400 ms mean power falls short wherever it changes within a window, at a
hole's edges and under the ramps, because the lifted window's power is the mean of gain^2 x power,
not gain^2 x mean power. On the realistic pairs one pass left 0.29-1.16 dB of dip on the mono sum,
three leave 0.11-0.57 dB (the same seams, nothing else changed).

The level is read on two meters (`METERS`), and the overlap is lifted as far as the one that hears
the deeper hole asks: BS.1770's K-weighting with every channel's power (what a stereo listener hears
as loudness) and the plain power of the mono sum (what a phone or a mono video player plays, and what
an RMS meter on a downmix reads). They disagree in two ways: K-weighting counts a kick and a bass
line under the upper range (60 Hz: 3.6 dB under 1 kHz, 6.9 dB under 4 kHz) where the mono sum counts
them in full, and the mono sum loses what the channels hold in anti-phase. Held on
the K-weighted meter alone, the realistic pop and drifting seams still dipped 1.8 dB on the mono sum;
held on both, 1.0-1.1 dB, with the K-weighted dips as before or lower.

Two clips a few dB apart still step in level at the seam: the track drops (or jumps) by the
difference within the 2 s overlap, at the mood change, where the listener is listening (4.2 dB on
the realistic rock pair, 4.9 dB on the dance pair, measured as the median 400 ms level of 3 s either
side; K-weighted and on the mono sum, the two meters, whose midpoint it takes: `level_step_db`).
`level_glides` measures that step on each seam's two sides and gives the incoming segment a gain
envelope: the step (at most `MAX_GLIDE_DB`) up to the end of the overlap, then back to 0 dB along a
raised cosine over `glide_seconds`, so the change of level is spread over bars, not the overlap. The
segment's own dynamics stay; only its level on arrival follows the outgoing segment.

Arrays are float (channels, frames).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from musicgen_pipeline.audio.crossfade import centred_mean, crossfade, fade_curves
from musicgen_pipeline.audio.loudness import k_weighted
from musicgen_pipeline.audio.window import window_means

if TYPE_CHECKING:  # seam_plan asks `held_dip` which bar position leaves a hole
    from musicgen_pipeline.audio.seam_plan import TransitionPlan

LEVEL_SECONDS = 0.4  # the short-term level's window (BS.1770 momentary loudness)
CONTEXT_SECONDS = 3.0  # each side's level: the median 400 ms level over this much audio outside the overlap
MAX_LIFT_DB = 4.0  # the most the overlap is lifted anywhere
HOLD_PASSES = 3  # the lift is measured again on the lifted overlap and what remains lifted, this often
EDGE_SECONDS = 0.25  # the lift rises from 0 dB over this much at each end of the overlap
SMOOTH_SECONDS = 0.1  # the gain curve is smoothed over this much (no audible steps)
MAX_GLIDE_DB = 6.0  # the largest level step a glide takes out at the seam


METERS = ("k_weighted", "mono")  # the two meters the level is read on (see the module doc)


def metered_power(x: np.ndarray, sample_rate: int, meter: str = "k_weighted") -> np.ndarray:
    """Per frame (shape (frames,)), the power a meter reads of (channels, frames) `x`: `k_weighted`,
    the channels' mean K-weighted power (BS.1770); `mono`, the plain power of the channels' mean.

    A stereo signal whose channels are in anti-phase has no mono sum, but its loudness:

    >>> x = np.stack([np.ones(8), -np.ones(8)])
    >>> float(metered_power(x, 48000, "mono").max()), bool(metered_power(x, 48000).max() > 0)
    (0.0, True)
    """
    x = np.atleast_2d(x)
    if meter == "mono":
        return np.square(x.mean(axis=0, dtype=np.float64))
    if meter != "k_weighted":
        raise ValueError(f"meter {meter!r}: expected one of {METERS}")
    return np.mean(np.square(k_weighted(x, sample_rate), dtype=np.float64), axis=0)


def side_power(x: np.ndarray, sample_rate: int, meter: str = "k_weighted") -> float | None:
    """A side's level as a power: the median of its 400 ms windows' mean power on `meter`
    (`metered_power`; K-weighted: BS.1770's momentary loudness, hop 50 ms; the whole of `x` when
    shorter than one window); None when `x` is empty or silent.

    A 1 kHz tone at amplitude 0.5 (its mean power 0.125; K-weighting adds about 0.7 dB at 1 kHz):

    >>> tone = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(32000) / 32000)
    >>> round(float(10 * np.log10(side_power(np.stack([tone, tone]), 32000))), 1)
    -8.4
    >>> round(float(10 * np.log10(side_power(np.stack([tone, tone]), 32000, "mono"))), 1)
    -9.0
    """
    x = np.atleast_2d(x)
    if x.shape[-1] == 0:
        return None
    power = metered_power(x, sample_rate, meter)
    win = min(power.size, max(1, round(LEVEL_SECONDS * sample_rate)))
    level = float(np.median(window_means(power, win, max(1, round(0.05 * sample_rate)))))
    return level if level > 0 else None


def _moving_max(x: np.ndarray, width: int) -> np.ndarray:
    from scipy.ndimage import maximum_filter1d

    return maximum_filter1d(x, size=max(1, width), mode="nearest")


def hold_level_gain(
    mix: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    sample_rate: int,
    curve: str = "equal_power",
    passes: int = HOLD_PASSES,
) -> np.ndarray:
    """Per-frame gain (>= 1, shape (frames,)) that lifts the overlap `mix` to the level its sides have
    around it: `before` is the outgoing side just before the overlap, `after` the incoming side just
    after it (up to `CONTEXT_SECONDS` each; either may be empty, then the other stands for both).
    `curve` is the crossfade's (the target follows it; `adaptive` is equal power). The lift is the
    larger of the two meters' (`METERS`), measured `passes` times, each time on the overlap as lifted so
    far (`HOLD_PASSES`; the cap and the peak ceiling hold for the whole). All ones when neither side
    has a level or the overlap is shorter than two edges.

    A 6 dB hole in the middle of a 2 s overlap between two sides of equal level is lifted by the
    4 dB cap; the gain is 1 at both ends:

    >>> sr = 1000; rng = np.random.default_rng(0)
    >>> hole = rng.standard_normal((1, 2000)) * np.r_[np.ones(700), 0.5 * np.ones(600), np.ones(700)]
    >>> gain = hold_level_gain(hole, rng.standard_normal((1, 3000)), rng.standard_normal((1, 3000)), sr)
    >>> float(gain[0]), round(float(20 * np.log10(gain[1000])), 2), float(gain[-1])
    (1.0, 4.0, 1.0)
    """
    mix = np.atleast_2d(mix)
    n = mix.shape[-1]
    edge = round(EDGE_SECONDS * sample_rate)
    if n < 2 * edge + 1:
        return np.ones(n)
    fade_out, fade_in = fade_curves(n, "equal_power" if curve == "adaptive" else curve)
    window = min(n, round(LEVEL_SECONDS * sample_rate))
    targets = []
    for meter in METERS:
        p_before, p_after = side_power(before, sample_rate, meter), side_power(after, sample_rate, meter)
        if p_before is None and p_after is None:
            continue
        p_before = p_before if p_before is not None else p_after
        p_after = p_after if p_after is not None else p_before
        targets.append((meter, fade_out**2 * p_before + fade_in**2 * p_after))
    # Metered with what precedes the overlap in the track, so the K filters have settled at its start.
    lead = (
        np.atleast_2d(before)[:, -window:] if np.atleast_2d(before).shape[0] == mix.shape[0] else mix[:, :0]
    )
    # Never above the peaks the music has around the seam: the loudness normaliser would otherwise
    # turn the whole track down for the lifted overlap's sake.
    context = [np.abs(np.atleast_2d(x)).max() for x in (before, after) if np.atleast_2d(x).size]
    ceiling = float(max(context)) if context else 0.0
    ramp = np.ones(n)
    rise = np.sin(0.5 * np.pi * (np.arange(edge) + 0.5) / edge) ** 2
    ramp[:edge], ramp[n - edge :] = rise, rise[::-1]
    cap = 10 ** (MAX_LIFT_DB / 20)
    gain = np.ones(n)
    for _ in range(passes if targets else 0):
        lifted = mix * gain
        lift = np.ones(n)
        for meter, target in targets:
            metered = metered_power(np.concatenate([lead, lifted], axis=1), sample_rate, meter)
            power = centred_mean(metered[lead.shape[1] :], window)
            lift = np.maximum(lift, np.sqrt(np.divide(target, power, out=np.ones(n), where=power > 0)))
        lift = np.clip(lift, 1.0, cap / gain)
        peak = _moving_max(np.abs(lifted).max(axis=0), window)
        lift = np.minimum(lift, np.maximum(1.0, np.divide(ceiling, peak, out=np.ones(n), where=peak > 0)))
        lift = centred_mean(lift, round(SMOOTH_SECONDS * sample_rate))  # n > 2 edges > this window
        gain = np.minimum(gain * np.exp(np.log(lift) * ramp), cap)
    return gain


def hold_level(
    mix: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    sample_rate: int,
    curve: str = "equal_power",
) -> np.ndarray:
    """`mix` times `hold_level_gain(mix, before, after, sample_rate, curve)`, float32."""
    return (np.atleast_2d(mix) * hold_level_gain(mix, before, after, sample_rate, curve)).astype(np.float32)


def _dip_db(power: np.ndarray, start: int, stop: int, sample_rate: int) -> float:
    """How far the quietest 400 ms window (hop 50 ms) of power[start:stop] lies below the median
    400 ms level of the rest of `power` (what lies before `start` and after `stop`), dB; 0.0 when
    either has no whole window."""
    win, hop = round(LEVEL_SECONDS * sample_rate), max(1, round(0.05 * sample_rate))

    def levels(a: int, b: int) -> np.ndarray:
        return 10 * np.log10(window_means(power[a:b], win, hop) + 1e-12)

    inside = levels(start, stop)
    around = np.concatenate([levels(0, start), levels(stop, power.size)])
    return float(np.median(around) - inside.min()) if inside.size and around.size else 0.0


def held_dip(
    prev: np.ndarray,
    nxt: np.ndarray,
    p: int,
    q: int,
    n: int,
    sample_rate: int,
    curve: str = "equal_power",
) -> float:
    """The dip (dB) the held crossfade of prev[:, p : p + n] into nxt[:, q : q + n] leaves: the overlap
    crossfaded with `curve` and lifted by `hold_level`, then on each meter (`METERS`) its quietest
    400 ms below the median 400 ms level of the `CONTEXT_SECONDS` of prev before it and of nxt after it;
    the larger of the two. What the hold cannot fill (a hole deeper than `MAX_LIFT_DB`, or one the
    peak ceiling keeps it from lifting) stays in it; the planner avoids bar positions that leave one
    (`seam_plan`). `prev`, `nxt`: (channels, frames) of the same channel count."""
    prev, nxt = np.atleast_2d(prev), np.atleast_2d(nxt)
    ctx = round(CONTEXT_SECONDS * sample_rate)
    before, after = prev[:, max(0, p - ctx) : p], nxt[:, q + n : q + n + ctx]
    held = hold_level(
        crossfade(prev[:, p : p + n], nxt[:, q : q + n], curve), before, after, sample_rate, curve
    )
    track = np.concatenate([before, held, after], axis=1)
    start = before.shape[1]
    return max(_dip_db(metered_power(track, sample_rate, m), start, start + n, sample_rate) for m in METERS)


def meter_step_db(before: np.ndarray, after: np.ndarray, sample_rate: int, meter: str) -> float:
    """The level step at a seam on one meter, dB: the outgoing side's level (`before`, just before the
    overlap) minus the incoming side's (`after`, just after it), each `side_power` on `meter`; 0.0
    when either is silent or empty. Positive: the incoming side is quieter."""
    p_before, p_after = side_power(before, sample_rate, meter), side_power(after, sample_rate, meter)
    if p_before is None or p_after is None:
        return 0.0
    return float(10 * np.log10(p_before / p_after))


def level_step_db(before: np.ndarray, after: np.ndarray, sample_rate: int) -> float:
    """The level step a glide takes out at a seam, dB (positive: the incoming side is quieter): the
    midpoint of the two meters' steps (`meter_step_db` on each of `METERS`). One gain cannot take out
    a step on both meters where they disagree (on the realistic pairs by 0.3-4.8 dB); matched on one,
    the whole disagreement stays as a step on the other. The midpoint leaves each meter half of it,
    the least the larger of the two can be. Mostly the spectrum parts them (ballad: 2.1 of 2.1 dB); on
    the dance pair it is width: the first clip's channels are largely in anti-phase (correlation
    -0.78), so its mono sum lies 9.3 dB under the channels' power, the second clip's 2.7 dB (a mid/side
    glide, the side at its own gain, matched both meters' steps but left a deeper dip in the overlap:
    1.14 against 0.57 dB on the mono sum, so it was not kept)."""
    steps = [meter_step_db(before, after, sample_rate, meter) for meter in METERS]
    return float(np.mean(steps))


def glide_envelope(frames: int, hold_until: int, step_db: float, glide_frames: int) -> np.ndarray:
    """Gain per frame (shape (frames,)): 10^(step_db/20) up to `hold_until`, then a raised cosine to 1
    over `glide_frames`, 1 after.

    >>> env = glide_envelope(10, 2, 20 * np.log10(2.0), 4)
    >>> env.round(3).tolist()
    [2.0, 2.0, 1.962, 1.691, 1.309, 1.038, 1.0, 1.0, 1.0, 1.0]
    """
    gain = np.ones(frames)
    start = 10 ** (step_db / 20)
    hold_until = int(np.clip(hold_until, 0, frames))
    gain[:hold_until] = start
    stop = min(frames, hold_until + max(0, glide_frames))
    x = (np.arange(stop - hold_until) + 0.5) / max(1, glide_frames)
    gain[hold_until:stop] = 1 + (start - 1) * np.cos(0.5 * np.pi * x) ** 2
    return gain


def arrival_db(envelope: np.ndarray | None) -> float:
    """A glide envelope's gain on arrival (its first frame), dB; 0.0 for None."""
    return 0.0 if envelope is None or envelope.size == 0 else float(20 * np.log10(envelope[0]))


def level_glides(
    segments: Sequence[np.ndarray], plans: Sequence[TransitionPlan], sample_rate: int, glide_seconds: float
) -> list[np.ndarray | None]:
    """Per segment, its gain envelope (shape (frames,)) or None where it keeps its level (the first
    segment; every one when `glide_seconds` is 0). Seams are taken in order: seam k's step is measured
    on segment k as already glided (up to `CONTEXT_SECONDS` before the overlap) against segment k+1's
    own level just after it, so a short segment still gliding at its next seam hands that level on.

    `segments` are (channels, frames) arrays, `plans[k]` the seam between segments k and k+1."""
    out: list[np.ndarray | None] = [None] * len(segments)
    if glide_seconds <= 0:
        return out
    ctx = round(CONTEXT_SECONDS * sample_rate)
    for k, plan in enumerate(plans):
        prev = np.atleast_2d(segments[k])
        if out[k] is not None:
            prev = prev * out[k]
        nxt = np.atleast_2d(segments[k + 1])
        before = prev[:, max(0, plan.prev_start - ctx) : plan.prev_start]
        after = nxt[:, plan.next_stop : plan.next_stop + ctx]
        step = float(np.clip(level_step_db(before, after, sample_rate), -MAX_GLIDE_DB, MAX_GLIDE_DB))
        if abs(step) >= 0.05:
            out[k + 1] = glide_envelope(
                nxt.shape[-1], plan.next_stop, step, round(glide_seconds * sample_rate)
            )
    return out
