"""The listening page's picture of a soundtrack: waveform over spectrogram, edge to edge in time.

Unlike the asset pictures (matplotlib figures with axes and margins), column ``i`` of this PNG covers
exactly ``[i, i + 1) * duration / width`` seconds, so the page can draw seams, scene boundaries and the
playhead over it in percent of its width with no knowledge of a plot's layout. Plain numpy: min/max
per column for the waveform, one Hann-windowed FFT per column (centred on the column) for the
spectrogram on a log-frequency axis (30 Hz to Nyquist), 80 dB of range under the loudest bin.
"""

from __future__ import annotations

import io

import numpy as np

from musicgen_pipeline.audio.io import Audio

WIDTH = 1200
WAVE_HEIGHT = 80
SPECTRUM_HEIGHT = 180
GAP = 2
LOW_HZ = 30.0
DYNAMIC_RANGE_DB = 80.0
_BACKGROUND = np.array([20, 22, 30], dtype=np.uint8)
_WAVE = np.array([110, 170, 235], dtype=np.uint8)


def _waveform(mono: np.ndarray, width: int, height: int) -> np.ndarray:
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = _BACKGROUND
    edges = np.linspace(0, mono.size, width + 1).astype(np.int64)
    rows = np.arange(height)[:, None]
    if mono.size >= width:  # every column holds at least one sample: starts strictly increase
        lows, highs = np.minimum.reduceat(mono, edges[:-1]), np.maximum.reduceat(mono, edges[:-1])
    else:  # fewer samples than columns: each column shows the sample under it
        index = np.minimum(edges[:-1], max(mono.size - 1, 0))
        lows = highs = mono[index] if mono.size else np.zeros(width)
    peak = max(1e-9, float(np.abs(mono).max()) if mono.size else 1.0)
    # Row 0 is the top (+peak), the last row the bottom (-peak); each column is filled from min to max.
    top = np.floor((1.0 - highs / peak) * (height - 1) / 2).astype(int)
    bottom = np.ceil((1.0 - lows / peak) * (height - 1) / 2).astype(int)
    image[(rows >= top[None, :]) & (rows <= bottom[None, :])] = _WAVE
    return image


def _spectrogram(mono: np.ndarray, rate: int, width: int, height: int) -> np.ndarray:
    from matplotlib import colormaps

    n_fft = 2048 if rate >= 22050 else 1024
    centres = ((np.arange(width) + 0.5) * mono.size / width).astype(np.int64)
    padded = np.pad(mono, (n_fft // 2, n_fft // 2))
    frames = padded[centres[:, None] + np.arange(n_fft)[None, :]] * np.hanning(n_fft)[None, :]
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (width, bins)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    wanted = np.geomspace(LOW_HZ, rate / 2, height)[::-1]  # top row = highest frequency
    bins = np.clip(np.searchsorted(freqs, wanted), 0, freqs.size - 1)
    with np.errstate(divide="ignore"):
        db = 10.0 * np.log10(power[:, bins].T + 1e-20)
    level = np.clip((db - (db.max() - DYNAMIC_RANGE_DB)) / DYNAMIC_RANGE_DB, 0.0, 1.0)
    return (colormaps["magma"](level)[..., :3] * 255).astype(np.uint8)


def soundtrack_png(audio: Audio, width: int = WIDTH) -> bytes:
    """PNG bytes: waveform (top) and spectrogram (bottom), `width` columns spanning the whole track."""
    from matplotlib.image import imsave

    mono = np.asarray(audio.mono(), dtype=np.float64)
    gap = np.empty((GAP, width, 3), dtype=np.uint8)
    gap[:] = _BACKGROUND
    image = np.concatenate(
        [
            _waveform(mono, width, WAVE_HEIGHT),
            gap,
            _spectrogram(mono, audio.sample_rate, width, SPECTRUM_HEIGHT),
        ]
    )
    buffer = io.BytesIO()
    imsave(buffer, image, format="png")
    return buffer.getvalue()
