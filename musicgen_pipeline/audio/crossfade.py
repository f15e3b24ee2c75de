"""Crossfades: fade curves, zero-crossing and beat snapping, and the stem-aware crossfade.

All arrays are float (channels, frames). A crossfade mixes the overlap `a` (end of the previous
segment) with `b` (start of the next) of the same shape.
"""

from __future__ import annotations

import numpy as np

from musicgen_pipeline.audio.stems import Stems

DEFAULT_MICRO_FADE_SECONDS = 0.004


def fade_curves(n: int, curve: str = "equal_power") -> tuple[np.ndarray, np.ndarray]:
    """(fade_out, fade_in) gains of length n.

    `equal_power`: cos/sin of a quarter period, so fade_out**2 + fade_in**2 == 1 and uncorrelated
    material keeps its power through the overlap. `linear`: 1-x / x (sums to 1; dips 3 dB on
    uncorrelated material, the baseline).
    """
    if n <= 0:
        return np.zeros(0), np.zeros(0)
    x = (np.arange(n) + 0.5) / n
    if curve == "equal_power":
        return np.cos(0.5 * np.pi * x), np.sin(0.5 * np.pi * x)
    if curve == "linear":
        return 1.0 - x, x
    raise ValueError(f"unknown crossfade curve {curve!r} (use 'equal_power' or 'linear')")


CURVES = ("equal_power", "linear", "adaptive")


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Zero-lag normalised correlation of two equal-shape signals (0 when either is silent)."""
    na = float(np.sqrt(np.sum(np.square(a, dtype=np.float64))))
    nb = float(np.sqrt(np.sum(np.square(b, dtype=np.float64))))
    if na == 0 or nb == 0:
        return 0.0
    return float(np.sum(a.astype(np.float64) * b) / (na * nb))


def adaptive_curves(n: int, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """Power-preserving gains for material of correlation `rho` (clipped to [0, 1]): the cos/sin pair
    scaled by 1 / sqrt(1 + 2 rho cos sin), so fade_out^2 + fade_in^2 + 2 rho fade_out fade_in == 1.
    rho = 0 is the equal-power crossfade; rho = 1 (the same material) keeps the amplitude (no +3 dB bump)."""
    rho = float(np.clip(rho, 0.0, 1.0))
    c, s = fade_curves(n, "equal_power")
    scale = 1.0 / np.sqrt(1.0 + 2.0 * rho * c * s)
    return c * scale, s * scale


def crossfade(a: np.ndarray, b: np.ndarray, curve: str = "equal_power") -> np.ndarray:
    """Mix `a` fading out with `b` fading in over their common length. `curve`: equal_power (cos/sin),
    linear, or adaptive (equal power corrected for the measured correlation of `a` and `b`)."""
    a = np.atleast_2d(a)
    b = np.atleast_2d(b)
    if a.shape != b.shape:
        raise ValueError(f"crossfade needs equal shapes, got {a.shape} and {b.shape}")
    if curve == "adaptive":
        fade_out, fade_in = adaptive_curves(a.shape[-1], correlation(a, b))
    else:
        fade_out, fade_in = fade_curves(a.shape[-1], curve)
    return (a * fade_out + b * fade_in).astype(np.float32)


def nearest_zero_crossing(samples: np.ndarray, index: int, radius: int) -> int:
    """The sample index within +-`radius` of `index` closest to a zero crossing of the channel mean
    (a sign change, or the smallest |x| when there is none)."""
    x = np.atleast_2d(samples).mean(axis=0)
    lo, hi = max(0, index - radius), min(x.size - 1, index + radius)
    if hi <= lo:
        return int(np.clip(index, 0, max(0, x.size - 1)))
    seg = x[lo : hi + 1]
    crossings = np.nonzero(np.signbit(seg[:-1]) != np.signbit(seg[1:]))[0]
    if crossings.size:
        # Of the two samples around a sign change, the one nearer zero.
        cand = crossings + (np.abs(seg[crossings + 1]) < np.abs(seg[crossings])).astype(int)
        return int(lo + cand[np.argmin(np.abs(lo + cand - index))])
    return int(lo + np.argmin(np.abs(seg)))


def joint_zero_crossing_shift(a: np.ndarray, a_index: int, b: np.ndarray, b_index: int, radius: int) -> int:
    """One shift s in [-radius, radius] applied to both cut points (so beat alignment is kept) that puts
    `a[a_index + s]` and `b[b_index + s]` as close to zero as possible (sum of |x| of the channel means)."""
    xa = np.atleast_2d(a).mean(axis=0)
    xb = np.atleast_2d(b).mean(axis=0)
    shifts = np.arange(-radius, radius + 1)
    ia, ib = a_index + shifts, b_index + shifts
    ok = (ia >= 0) & (ia < xa.size) & (ib >= 0) & (ib < xb.size)
    if not ok.any():
        return 0
    cost = np.abs(xa[ia[ok]]) + np.abs(xb[ib[ok]])
    # Prefer the smallest move among (near-)ties.
    cost = cost + 1e-9 * np.abs(shifts[ok])
    return int(shifts[ok][np.argmin(cost)])


def snap_to_beat(time: float, beat_times: np.ndarray, window: float) -> float:
    """The beat nearest `time` if one lies within `window` seconds, else `time` unchanged."""
    beats = np.asarray(beat_times, dtype=float)
    if beats.size == 0 or window <= 0:
        return time
    j = int(np.argmin(np.abs(beats - time)))
    return float(beats[j]) if abs(beats[j] - time) <= window else time


def micro_swap(a: np.ndarray, b: np.ndarray, at: int, fade: int) -> np.ndarray:
    """`a` before frame `at`, `b` after it, with an equal-power micro-fade of `fade` frames centred on `at`
    so the swap cannot click."""
    a = np.atleast_2d(a)
    b = np.atleast_2d(b)
    n = a.shape[-1]
    gain_b = (np.arange(n) >= at).astype(float)
    fade = max(0, min(fade, n))
    if fade > 0:
        lo = int(np.clip(at - fade // 2, 0, n - fade))
        x = (np.arange(fade) + 0.5) / fade
        gain_b[lo : lo + fade] = np.sin(0.5 * np.pi * x) ** 2
    gain_b = np.clip(gain_b, 0.0, 1.0)
    # Equal power: sqrt of complementary power gains.
    return (a * np.sqrt(1.0 - gain_b) + b * np.sqrt(gain_b)).astype(np.float32)


# The most a bass line is raised to carry the other side's share of the bass band (+6 dB): a side with
# next to no bass (an intro, a breakdown, the gap between two notes) is not pumped up from its floor.
BASS_SWAP_MAX_GAIN = 2.0


def centred_mean(x: np.ndarray, width: int) -> np.ndarray:
    """Per element of the 1-D `x`, its mean over a centred `width`-element window (moved inward at the
    ends); the mean of all of `x` everywhere when `width` is 0 or at least `x.size`."""
    n = x.size
    if width <= 0 or width >= n:
        return np.full(n, x.mean())
    csum = np.concatenate([[0.0], np.cumsum(x)])
    lo = np.clip(np.arange(n) - width // 2, 0, n - width)
    return (csum[lo + width] - csum[lo]) / width


def local_power(x: np.ndarray, smooth: int) -> np.ndarray:
    """Per frame, the channels' mean power over a centred `smooth`-frame window (the overlap's mean
    power everywhere when `smooth` is 0 or longer than the overlap)."""
    return centred_mean(np.mean(np.square(x, dtype=np.float64), axis=0), smooth)


def bass_swap_gains(
    a: np.ndarray, b: np.ndarray, curve: str = "equal_power", smooth: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(gain of a, gain of b) per frame for a bass swap that keeps the bass band's level.

    A swap plays one bass line at a time. At full gain the band then carries the outgoing line alone
    up to the swap and the incoming one alone after it: where the incoming bass is louder than the
    outgoing one (a 10 dB louder bass on the realistic ballad pair; locally, a note that starts on
    one side while the other's decays), the first half of the overlap lacks the share the crossfade
    would give it, and the seam dips (up to 1.3 dB more than a plain crossfade on the realistic pairs);
    the other way round it bulges. Here the line that plays carries the power the crossfade (`curve`)
    would give both together, fade_out^2 P(a) + fade_in^2 P(b), with P each line's power over `smooth`
    frames around each frame (0: over the whole overlap), so the band's level follows the crossfade and
    two bass lines still never sound together. Gains are capped at `BASS_SWAP_MAX_GAIN`."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    n = a.shape[-1]
    fade_out, fade_in = fade_curves(n, "equal_power" if curve == "adaptive" else curve)
    pa, pb = local_power(a, smooth), local_power(b, smooth)
    target = fade_out**2 * pa + fade_in**2 * pb

    def gain(power: np.ndarray) -> np.ndarray:
        ratio = np.divide(target, power, out=np.ones(n), where=power > 0)
        return np.minimum(np.sqrt(ratio), BASS_SWAP_MAX_GAIN)

    return gain(pa), gain(pb)


def stem_aware_crossfade(
    prev_stems: Stems,
    next_stems: Stems,
    swap_at: int | None,
    micro_fade: int,
    curve: str = "equal_power",
    bass_smooth: int = 0,
) -> np.ndarray:
    """Crossfade stem by stem over the overlap: every stem crosses with `curve`, except `bass`, which is
    swapped at frame `swap_at` (a beat) with a `micro_fade`-frame equal-power fade, so two bass lines
    never play together; the line that plays carries the bass band's level a crossfade would
    (`bass_swap_gains`, local power over `bass_smooth` frames). Both dicts hold the overlap's stems
    (same names, same shapes). With no bass stem or no swap point it is a plain crossfade of every stem."""
    names = [n for n in prev_stems if n in next_stems]
    missing = set(prev_stems) ^ set(next_stems)
    if missing:
        raise ValueError(f"stem sets differ between the two sides: {sorted(missing)}")
    out: np.ndarray | None = None
    for name in names:
        a, b = np.atleast_2d(prev_stems[name]), np.atleast_2d(next_stems[name])
        if name == "bass" and swap_at is not None:
            gain_a, gain_b = bass_swap_gains(a, b, curve, bass_smooth)
            part = micro_swap(a * gain_a, b * gain_b, swap_at, micro_fade)
        else:
            part = crossfade(a, b, curve)
        out = part if out is None else out + part
    if out is None:
        raise ValueError("no stems to crossfade")
    return out.astype(np.float32)
