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
- `CrossfadeLevel(prev, nxt, sr, curve).dip(p, q, n)`: the loudness dip (dB) of the crossfade of
  prev[p : p + n] into nxt[q : q + n] with the fade curve (rendered on the mono sums, so the two sides'
  correlation counts: drum hits of one kit that meet in or out of phase): the quietest 400 ms of the
  overlap below the median 400 ms level of the 3 s before it (prev) and after it (nxt), the measure
  `benchmarks/realistic_seams.py` applies to a joined track. Which beats meet decides which stretch of
  each side's music the overlap covers: a held chord or the gap after a phrase, the loud bar after a
  crash or the quiet one before it. The planner weighs that (`seam_plan`).
"""

from __future__ import annotations

import numpy as np

from musicgen_pipeline.audio.window import window_means

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
    for row, sos in enumerate(bands):
        y = signal.sosfilt(sos, x)
        energy = np.maximum(window_means(y * y, frame, hop), 0.0)
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


def strong_parity(accents: np.ndarray, ratio: float = ACCENT_RATIO, *, median: bool = False) -> int | None:
    """0 when the even-indexed beats carry the strong attacks, 1 when the odd ones do (the mean accent
    of one half at least `ratio` times the other's): the grid counts twice the felt pulse. None when
    neither half dominates or there are fewer than `MIN_ACCENT_BEATS` beats.

    `median`: compare the halves' median accents instead, so one fill or crash on a weak beat does not
    hide the alternation (the last 6 s of the slow realistic clip: means 2.5x apart, medians 3.7x)."""
    a = np.asarray(accents, dtype=np.float64)
    if a.size < MIN_ACCENT_BEATS:
        return None
    average = np.median if median else np.mean
    even, odd = float(average(a[0::2])), float(average(a[1::2]))
    if even >= ratio * odd and even > 0:
        return 0
    if odd >= ratio * even and odd > 0:
        return 1
    return None


DIP_WINDOW_SECONDS = 0.4
DIP_HOP_SECONDS = 0.05
DIP_CONTEXT_SECONDS = 3.0


class CrossfadeLevel:
    """Loudness of a crossfade between two sides, on their mono sums (see the module doc)."""

    def __init__(self, prev: np.ndarray, nxt: np.ndarray, sample_rate: int, curve: str) -> None:
        self.prev = np.atleast_2d(np.asarray(prev, dtype=np.float64)).mean(axis=0)
        self.nxt = np.atleast_2d(np.asarray(nxt, dtype=np.float64)).mean(axis=0)
        self.sr = sample_rate
        self.curve = curve
        self.win = round(DIP_WINDOW_SECONDS * sample_rate)
        self.hop = round(DIP_HOP_SECONDS * sample_rate)

    def _levels(self, y: np.ndarray) -> np.ndarray:
        """dB of each window [s, s + win) of `y` (hop apart)."""
        return 10 * np.log10(window_means(y * y, self.win, self.hop) + 1e-12)

    def overlap_levels(self, p: int, q: int, n: int) -> np.ndarray:
        """dB of each 400 ms window of the crossfade of prev[p : p + n] into nxt[q : q + n]."""
        from musicgen_pipeline.audio.crossfade import crossfade

        mixed = crossfade(self.prev[None, p : p + n], self.nxt[None, q : q + n], self.curve)
        return self._levels(mixed[0].astype(np.float64))

    def dip(self, p: int, q: int, n: int) -> float:
        context = round(DIP_CONTEXT_SECONDS * self.sr)
        around = np.concatenate(
            [
                self._levels(self.prev[max(0, p - context) : p]),
                self._levels(self.nxt[q + n : q + n + context]),
            ]
        )
        inside = self.overlap_levels(p, q, n)
        if inside.size == 0 or around.size == 0:
            return 0.0
        return float(np.median(around) - inside.min())
