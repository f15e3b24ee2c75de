"""Loudness per ITU-R BS.1770-4 (pyloudnorm), true peak (4x oversampled, BS.1770 Annex 2 style),
and normalisation to a target integrated loudness under a true-peak ceiling (gain + look-ahead limiter)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import soxr
from scipy import ndimage

from musicgen_pipeline.audio.io import Audio

MIN_GATE_SECONDS = 0.4  # one BS.1770 gating block
OVERSAMPLE = 4


def integrated_loudness(audio: Audio) -> float:
    """Integrated loudness in LUFS (K-weighted, gated). -inf for silence. Audio shorter than one
    400 ms gating block is measured as if padded with silence (the gate ignores the padding)."""
    import pyloudnorm

    x = audio.samples.T.astype(np.float64)
    minimum = math.ceil(MIN_GATE_SECONDS * audio.sample_rate) + 1
    if x.shape[0] < minimum:
        x = np.concatenate([x, np.zeros((minimum - x.shape[0], x.shape[1]))])
    if not np.any(x):
        return float("-inf")
    meter = pyloudnorm.Meter(audio.sample_rate)
    data = x[:, 0] if x.shape[1] == 1 else x
    return float(meter.integrated_loudness(data))


CHUNK_SECONDS = 10.0  # oversample in chunks: a 20-minute stereo track at 4x would need GBs at once
MARGIN = 256  # frames of real signal on each side of a chunk, so the resampler sees no false edge


def k_weighted(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """`samples` (channels, frames) through BS.1770's K-weighting (the +4 dB high shelf at 1.5 kHz, then
    the 38 Hz high-pass), float64: the mean square of a channel of this, summed over channels, is the
    loudness measure's power (LUFS = -0.691 + 10 log10 of it)."""
    import pyloudnorm

    x = np.atleast_2d(samples).astype(np.float64)
    for stage in (
        pyloudnorm.IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, sample_rate, "high_shelf"),
        pyloudnorm.IIRfilter(0.0, 0.5, 38.0, sample_rate, "high_pass"),
    ):
        x = np.stack([stage.apply_filter(channel) for channel in x])
    return x


def _channel_max_abs(x: np.ndarray) -> np.ndarray:
    """max over channels of |x| for (channels, n) (elementwise, much faster than a reduce over axis 0 of size 2)."""
    out = np.abs(x[0]).astype(np.float64)
    for row in x[1:]:
        np.maximum(out, np.abs(row), out=out)
    return out


def _block_peaks(samples: np.ndarray, sample_rate: int, block: int) -> np.ndarray:
    """Per block of `block` frames: the largest |x| of the 4x-oversampled signal (and of the samples
    themselves), over all channels. Works chunk by chunk to bound memory."""
    frames = samples.shape[1]
    nblocks = math.ceil(frames / block)
    peaks = np.zeros(nblocks)
    chunk = max(block, int(CHUNK_SECONDS * sample_rate) // block * block)
    for lo in range(0, frames, chunk):
        hi = min(frames, lo + chunk)
        a, b = max(0, lo - MARGIN), min(frames, hi + MARGIN)
        part = np.ascontiguousarray(samples[:, a:b].T, dtype=np.float64)
        up = np.asarray(soxr.resample(part, sample_rate, sample_rate * OVERSAMPLE, quality="HQ"))
        up = _channel_max_abs(up.T if up.ndim == 2 else up[np.newaxis, :])
        start = (lo - a) * OVERSAMPLE
        mine = up[start : start + (hi - lo) * OVERSAMPLE]
        base = np.repeat(_channel_max_abs(samples[:, lo:hi]), OVERSAMPLE)
        # The resampler's edge handling can under-read the first/last samples: include the samples.
        both = base.copy()
        both[: mine.size] = np.maximum(base[: mine.size], mine)
        n = math.ceil((hi - lo) / block)
        padded = np.zeros(n * block * OVERSAMPLE)
        padded[: both.size] = both
        peaks[lo // block : lo // block + n] = padded.reshape(n, -1).max(axis=1)
    return peaks


def true_peak(audio: Audio) -> float:
    """Largest absolute value of the 4x-oversampled signal (linear), BS.1770-4 Annex 2 style."""
    if audio.frames == 0:
        return 0.0
    return float(_block_peaks(audio.samples, audio.sample_rate, max(1, audio.sample_rate // 10)).max())


def true_peak_db(audio: Audio) -> float:
    peak = true_peak(audio)
    return 20 * math.log10(peak) if peak > 0 else float("-inf")


def sample_peak_dbfs(audio: Audio) -> float:
    peak = float(np.max(np.abs(audio.samples))) if audio.frames else 0.0
    return 20 * math.log10(peak) if peak > 0 else float("-inf")


@dataclass(frozen=True)
class LoudnessResult:
    """What `normalize_loudness` did: loudness and true peak before/after, the gain, limiter activity."""

    input_lufs: float
    output_lufs: float
    input_true_peak_dbtp: float
    output_true_peak_dbtp: float
    gain_db: float
    limited: bool

    def to_dict(self) -> dict[str, float | bool | None]:
        def r(v: float) -> float | None:
            return round(v, 3) if math.isfinite(v) else None

        return {
            "input_lufs": r(self.input_lufs),
            "output_lufs": r(self.output_lufs),
            "input_true_peak_dbtp": r(self.input_true_peak_dbtp),
            "output_true_peak_dbtp": r(self.output_true_peak_dbtp),
            "gain_db": r(self.gain_db),
            "limited": self.limited,
        }


def _limit(
    samples: np.ndarray,
    sample_rate: int,
    ceiling: float,
    peaks: np.ndarray | None = None,
    lookahead: float = 0.005,
    release: float = 0.08,
) -> np.ndarray:
    """Look-ahead peak limiter on the true peak: gain <= ceiling / |x_oversampled| everywhere, reached
    smoothly (attack = `lookahead`, exponential release). Works on 1 ms blocks (`peaks`: the
    `_block_peaks` of `samples` at 1 ms, when already known), linked across channels."""
    frames = samples.shape[1]
    block = max(1, sample_rate // 1000)
    nblocks = math.ceil(frames / block)
    if peaks is None:
        peaks = _block_peaks(samples, sample_rate, block)
    raw = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-12))
    g = raw
    ahead = max(1, round(lookahead * 1000))
    # Attack: every block sees the lowest gain needed in the next `ahead` blocks (and one before).
    g = ndimage.minimum_filter1d(g, size=2 * ahead + 1, mode="nearest")
    # Smooth the attack ramp with a moving average no longer than the look-ahead (stays <= needed).
    g = ndimage.uniform_filter1d(g, size=ahead, mode="nearest")
    g = np.minimum(g, ndimage.minimum_filter1d(raw, size=3, mode="nearest"))
    # Release: rise back towards 1 exponentially, never faster than the time constant.
    coeff = math.exp(-1.0 / max(1.0, release * 1000))
    out = g.copy()
    for i in range(1, nblocks):
        rel = out[i - 1] * coeff + (1 - coeff) * 1.0
        out[i] = min(g[i], rel)
    # Block gains hold between centres; linear interpolation between two gains that are each <= the
    # need of both blocks stays under the need (minimum filter of size 3 above).
    centres = (np.arange(nblocks) + 0.5) * block
    gain = np.interp(np.arange(frames), centres, out)
    return samples * gain[np.newaxis, :]


def normalize_loudness(
    audio: Audio, target_lufs: float = -14.0, true_peak_dbtp: float = -1.0, *, iterations: int = 8
) -> tuple[Audio, LoudnessResult]:
    """Gain to `target_lufs` integrated loudness, with a look-ahead limiter holding the true peak under
    `true_peak_dbtp` (instead of plain peak normalisation, which would miss the loudness target).
    Silence is returned unchanged. Returns the audio and a `LoudnessResult`."""
    before = integrated_loudness(audio)
    peak_before = true_peak_db(audio)
    if not math.isfinite(before):
        return audio, LoudnessResult(before, before, peak_before, peak_before, 0.0, False)
    ceiling = 10 ** ((true_peak_dbtp - 0.05) / 20)  # 0.05 dB margin for the measurement's own error
    x = audio.samples.astype(np.float64)
    limited = False
    # Oversample once: the block peaks of x * g are g times those of x.
    peaks = _block_peaks(x, audio.sample_rate, max(1, audio.sample_rate // 1000))

    def render(gain: float) -> tuple[np.ndarray, float, bool]:
        linear = 10 ** (gain / 20)
        y = x * linear
        hit = float(peaks.max()) * linear > ceiling
        if hit:
            y = _limit(y, audio.sample_rate, ceiling, peaks * linear)
        return y, integrated_loudness(Audio(y, audio.sample_rate)), hit

    # Secant search on the gain: the limiter takes back some loudness, more the harder it works.
    gain_db = target_lufs - before
    y, measured, limited = render(gain_db)
    prev_gain, prev_measured = gain_db, measured
    for _ in range(iterations):
        error = target_lufs - measured
        if abs(error) < 0.05 or not limited:
            break
        slope = (measured - prev_measured) / (gain_db - prev_gain) if gain_db != prev_gain else 1.0
        step = error / slope if slope > 0.05 else error
        prev_gain, prev_measured = gain_db, measured
        gain_db += float(np.clip(step, -12.0, 12.0))
        y, measured, hit = render(gain_db)
        limited = limited or hit
    # Guard: whatever the limiter left above the ceiling (inter-block interpolation) is scaled away.
    peak = true_peak(Audio(y, audio.sample_rate))
    if peak > ceiling:
        y = y * (ceiling / peak)
        measured = integrated_loudness(Audio(y, audio.sample_rate))
        peak = ceiling
    result = Audio(y.astype(np.float32), audio.sample_rate)
    return result, LoudnessResult(before, measured, peak_before, 20 * math.log10(peak), gain_db, limited)
