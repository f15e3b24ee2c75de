"""Phase-locking an overlap: which beats of the two sides meet (bar position), and the residual offset
between their beat grids, from the onset envelopes of the overlap itself.

After tempo matching both sides have the same beat period and the planner puts a beat of each side at
the overlap's start, but a beat grid is an estimate: a few ms (a tracker's lag that differs between
two recordings, a stretch's latency) to tens of ms (a beat put on a soft attack) off. A listener hears
the two sides' attacks as flams and the groove as a stumble. Here the two sides' own onsets decide:

- `onset_envelopes(samples, sr)`: per 1 ms, the (positive) rise of the log energy in a low band
  (< 150 Hz: kick, bass attacks) and a high band (> 2 kHz: snare, hi-hats, plucks), smoothed over 5 ms.
- `pattern_score(a, b)`: how well two envelope windows agree (mean Pearson correlation over the two
  bands): the same bar position puts kick on kick and snare on snare.
- `fine_lag(a, b, max_lag)`: the lag (ms, sub-ms by parabolic interpolation) within +-`max_lag` that
  maximises the cross-correlation of the two windows' envelopes (both bands summed), and its
  normalised peak value. Positive lag: b's onsets come `lag` ms later than a's (start b later).
- `beat_accents(samples, sr, beats)` / `strong_parity(accents)`: which beats of a grid carry the strong
  attacks. A grid read at twice the felt tempo (a 70 BPM half-time groove read as 140) alternates
  beats with a kick, snare or bass note and "beats" with a hi-hat only; the log-energy envelopes above
  (and the pattern score) rise alike for both, but the power an attack adds does not: on the
  project's realistic clips the stronger half of the beats adds 4.6-7.5x the power of the weaker half
  when read at double tempo, at most 2.5x when read at the felt tempo. Two such sides must meet strong
  beat on strong beat, or the groove jumps by half a felt beat at the seam (a beat tracker at the
  double level sees nothing: every eighth still meets an eighth).
- `CrossfadeLevel(prev, nxt, sr, curve).dip(p, q, n)`: the loudness dip (dB) a crossfade of
  prev[p : p + n] into nxt[q : q + n] would have, predicted from the two sides' own power (uncorrelated
  sides, the fade curve's gains): the quietest 400 ms of the overlap below the median 400 ms level of
  the 3 s before it (prev) and after it (nxt). Two beats that meet equally well can put the overlap on a
  held chord or in the gap after a phrase; the planner prefers the one that keeps the level.
"""

from __future__ import annotations

import numpy as np

ENVELOPE_RATE = 1000  # frames per second
LOW_HZ = 150.0
HIGH_HZ = 2000.0
SMOOTH_SECONDS = 0.005


def onset_envelopes(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """(2, frames) onset envelopes at 1 ms: row 0 low band, row 1 high band (see the module doc)."""
    from scipy import signal

    x = np.atleast_2d(np.asarray(samples, dtype=np.float64)).mean(axis=0)
    hop = max(1, round(sample_rate / ENVELOPE_RATE))
    frame = 2 * hop if sample_rate >= 8000 else hop
    n = max(0, (x.size - frame) // hop + 1)
    out = np.zeros((2, max(n - 1, 0)))
    if n < 3:
        return out
    bands = (
        signal.butter(4, LOW_HZ, btype="lowpass", fs=sample_rate, output="sos"),
        signal.butter(4, min(HIGH_HZ, 0.45 * sample_rate), btype="highpass", fs=sample_rate, output="sos"),
    )
    smooth = np.hanning(max(3, round(SMOOTH_SECONDS * ENVELOPE_RATE) + 2))[1:-1]
    smooth /= smooth.sum()
    starts = hop * np.arange(n)
    for row, sos in enumerate(bands):
        y = signal.sosfilt(sos, x)
        csum = np.concatenate([[0.0], np.cumsum(y * y)])
        energy = np.maximum(csum[starts + frame] - csum[starts], 0.0) / frame
        level = 10 * np.log10(energy + 1e-12 + 1e-5 * float(energy.max()))
        out[row] = np.convolve(np.maximum(np.diff(level), 0.0), smooth, mode="same")
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0


def pattern_score(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over the two bands of the Pearson correlation of two (2, frames) envelope windows, after
    a 40 ms smoothing (bar position matters here, not the last ms)."""
    n = min(a.shape[1], b.shape[1])
    if n < 10:
        return 0.0
    kernel = np.hanning(42)[1:-1]
    scores = []
    for row in range(2):
        sa = np.convolve(a[row, :n], kernel, mode="same")
        sb = np.convolve(b[row, :n], kernel, mode="same")
        scores.append(_pearson(sa, sb))
    return float(np.mean(scores))


def fine_lag(a: np.ndarray, b: np.ndarray, max_lag: int) -> tuple[float, float]:
    """(lag in envelope frames, normalised correlation at it): `b` is an envelope window `max_lag`
    frames longer than `a` on each side, so b[max_lag + lag : max_lag + lag + len(a)] lines up with `a`."""
    n = a.shape[1]
    if n < 10 or b.shape[1] < n + 2 * max_lag or max_lag < 1:
        return 0.0, 0.0
    xa = a.sum(axis=0)
    xb = b.sum(axis=0)
    xa = xa - xa.mean()
    na = float(np.linalg.norm(xa))
    if na == 0:
        return 0.0, 0.0
    values = np.empty(2 * max_lag + 1)
    for i, lag in enumerate(range(-max_lag, max_lag + 1)):
        seg = xb[max_lag + lag : max_lag + lag + n]
        seg = seg - seg.mean()
        nb = float(np.linalg.norm(seg))
        values[i] = float(xa @ seg / (na * nb)) if nb > 0 else 0.0
    k = int(np.argmax(values))
    offset = 0.0
    if 0 < k < values.size - 1:
        y0, y1, y2 = values[k - 1], values[k], values[k + 1]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            offset = float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5))
    return k - max_lag + offset, float(values[k])


ACCENT_SECONDS = 0.05
# The stronger half of the beats must add this many times the power of the weaker half for the grid
# to count as read at twice the felt tempo (see the module doc: 2.5x at most at the felt level, 4.6x at
# least at the double level on the realistic fixtures).
ACCENT_RATIO = 3.5
MIN_ACCENT_BEATS = 8


def beat_accents(samples: np.ndarray, sample_rate: int, beats: np.ndarray) -> np.ndarray:
    """Per beat (frames), the mean power of the `ACCENT_SECONDS` after it minus that of the
    `ACCENT_SECONDS` before it, floored at 0: how much an attack on that beat adds (mono sum)."""
    x = np.atleast_2d(np.asarray(samples, dtype=np.float64)).mean(axis=0)
    csum = np.concatenate([[0.0], np.cumsum(x * x)])
    w = max(1, round(ACCENT_SECONDS * sample_rate))
    f = np.asarray(beats, dtype=np.int64)
    ok = (f - w >= 0) & (f + w <= x.size)
    out = np.zeros(f.size)
    g = f[ok]
    out[ok] = np.maximum((csum[g + w] - csum[g]) - (csum[g] - csum[g - w]), 0.0) / w
    return out


def strong_parity(accents: np.ndarray, ratio: float = ACCENT_RATIO) -> int | None:
    """0 when the even-indexed beats carry the strong attacks, 1 when the odd ones do (the mean accent
    of one half at least `ratio` times the other's): the grid counts twice the felt pulse. None when
    neither half dominates or there are fewer than `MIN_ACCENT_BEATS` beats."""
    a = np.asarray(accents, dtype=np.float64)
    if a.size < MIN_ACCENT_BEATS:
        return None
    even, odd = float(a[0::2].mean()), float(a[1::2].mean())
    if even >= ratio * odd and even > 0:
        return 0
    if odd >= ratio * even and odd > 0:
        return 1
    return None


DIP_WINDOW_SECONDS = 0.4
DIP_HOP_SECONDS = 0.05
DIP_CONTEXT_SECONDS = 3.0


class CrossfadeLevel:
    """Predicted loudness dip of a crossfade between two mono-summed sides (see the module doc)."""

    def __init__(self, prev: np.ndarray, nxt: np.ndarray, sample_rate: int, curve: str) -> None:
        def csum(x: np.ndarray) -> np.ndarray:
            y = np.atleast_2d(np.asarray(x, dtype=np.float64)).mean(axis=0)
            return np.concatenate([[0.0], np.cumsum(y * y)])

        self.prev, self.nxt = csum(prev), csum(nxt)
        self.sr = sample_rate
        self.curve = "equal_power" if curve == "adaptive" else curve
        self.win = round(DIP_WINDOW_SECONDS * sample_rate)
        self.hop = round(DIP_HOP_SECONDS * sample_rate)

    def _power(self, csum: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Mean power of each window [s, s + win) with lo <= s, s + win <= hi (hop apart)."""
        hi = min(hi, csum.size - 1)
        starts = np.arange(max(0, lo), hi - self.win + 1, self.hop)
        return (csum[starts + self.win] - csum[starts]) / self.win

    def dip(self, p: int, q: int, n: int) -> float:
        from musicgen_pipeline.audio.crossfade import fade_curves

        context = round(DIP_CONTEXT_SECONDS * self.sr)
        around = np.concatenate(
            [self._power(self.prev, p - context, p), self._power(self.nxt, q + n, q + n + context)]
        )
        pa, pb = self._power(self.prev, p, p + n), self._power(self.nxt, q, q + n)
        k = min(pa.size, pb.size)
        if k == 0 or around.size == 0:
            return 0.0
        fade_out, fade_in = fade_curves(n, self.curve)
        centres = np.minimum(np.arange(k) * self.hop + self.win // 2, n - 1)
        mix = fade_out[centres] ** 2 * pa[:k] + fade_in[centres] ** 2 * pb[:k]
        floor = 1e-12
        return float(np.median(10 * np.log10(around + floor)) - np.min(10 * np.log10(mix + floor)))
