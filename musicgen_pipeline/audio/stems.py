"""The stem interface: anything that splits a mix into named stems of the mix's shape.

The DSP splitter (this package) and the Demucs separator (`musicgen_pipeline.models.demucs`) both
implement `StemSplitter`; the stem-aware crossfade only sees this interface.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from musicgen_pipeline.audio.io import Audio

STEMS_4 = ("drums", "bass", "other", "vocals")
STEMS_2 = ("vocals", "accompaniment")

Stems = dict[str, np.ndarray]  # name -> float32 (channels, frames), same shape as the mix


@runtime_checkable
class StemSplitter(Protocol):
    """Splits (channels, frames) float32 audio at `sample_rate` into STEMS_4, each the mix's shape.

    Implementations return stems that sum back to the mix (residual `other`) unless documented.
    """

    name: str

    def split(self, samples: np.ndarray, sample_rate: int) -> Stems: ...


def with_residual_other(stems: Stems, mix: np.ndarray) -> Stems:
    """Make the stems sum exactly to `mix` by taking `other` (or the last stem when there is no
    `other`) as the residual of the others. Keeps each stem's name and shape."""
    mix = np.atleast_2d(mix).astype(np.float32)
    if not stems:
        raise ValueError("no stems given")
    for name, value in stems.items():
        if np.atleast_2d(value).shape != mix.shape:
            raise ValueError(f"stem {name!r} has shape {np.shape(value)}, the mix has {mix.shape}")
    residual_name = "other" if "other" in stems else list(stems)[-1]
    out = {name: np.atleast_2d(v).astype(np.float32) for name, v in stems.items()}
    rest = sum((v for n, v in out.items() if n != residual_name), np.zeros_like(mix))
    out[residual_name] = (mix - rest).astype(np.float32)
    return out


class DspStemSplitter:
    """Fast stems without a neural model (about a second per minute of stereo audio on a CPU core).

    First a harmonic/percussive split of the mix (librosa's median-filter HPSS): drums = the
    percussive part; bass = the harmonic part under `bass_cutoff_hz` (zero-phase 4th-order Butterworth,
    so a kick's thump stays with the drums); other = the residual, so drums + bass + other + vocals ==
    mix; vocals = silence (a DSP split cannot isolate a voice; it stays inside `other`).
    """

    name = "dsp"

    def __init__(self, bass_cutoff_hz: float = 150.0, hpss_margin: float = 1.0, n_fft: int = 2048) -> None:
        self.bass_cutoff_hz = bass_cutoff_hz
        self.hpss_margin = hpss_margin
        self.n_fft = n_fft

    def split(self, samples: np.ndarray, sample_rate: int) -> Stems:
        import librosa
        from scipy import signal

        mix = np.atleast_2d(np.asarray(samples, dtype=np.float32))
        frames = mix.shape[1]
        # Scale the FFT with the rate so the split means the same at 22.05, 32 and 48 kHz.
        n_fft = int(2 ** np.round(np.log2(self.n_fft * sample_rate / 32000)))
        if frames >= n_fft:
            hop = n_fft // 4
            spec = librosa.stft(mix, n_fft=n_fft, hop_length=hop)
            # One pair of soft masks from the channels' mean magnitude, applied to every channel:
            # half the median filtering for stereo, and both channels split the same way.
            mask_h, mask_p = librosa.decompose.hpss(
                np.abs(spec).mean(axis=0), margin=self.hpss_margin, mask=True
            )
            drums = librosa.istft(spec * mask_p, hop_length=hop, n_fft=n_fft, length=frames)
            harmonic = librosa.istft(spec * mask_h, hop_length=hop, n_fft=n_fft, length=frames)
        else:
            drums = np.zeros_like(mix)
            harmonic = mix.astype(np.float64)
        sos = signal.butter(4, self.bass_cutoff_hz, btype="lowpass", fs=sample_rate, output="sos")
        if frames > 12:
            pad = min(frames - 1, 3 * round(sample_rate / self.bass_cutoff_hz))
            bass = signal.sosfiltfilt(sos, np.asarray(harmonic, dtype=np.float64), axis=1, padlen=pad)
        else:
            bass = np.zeros_like(mix)
        stems = {
            "drums": np.asarray(drums, dtype=np.float32),
            "bass": np.asarray(bass, dtype=np.float32),
            "other": np.zeros_like(mix),
            "vocals": np.zeros_like(mix),
        }
        return with_residual_other(stems, mix)


def split_window(splitter: StemSplitter, audio: Audio, start: int, stop: int, context: int) -> Stems:
    """Stems of `audio` frames [start, stop), separating only [start - context, stop + context).

    The context keeps the splitter's edge effects (filters, STFT frames, a network's receptive
    field) out of the window that is returned. `other` is made the residual so the returned stems
    sum to `audio.samples[:, start:stop]` exactly.
    """
    if not 0 <= start < stop <= audio.frames:
        raise ValueError(f"window [{start}, {stop}) is outside the audio's {audio.frames} frames")
    lo = max(0, start - max(0, context))
    hi = min(audio.frames, stop + max(0, context))
    raw = splitter.split(audio.samples[:, lo:hi], audio.sample_rate)
    window = {name: np.atleast_2d(v)[:, start - lo : stop - lo] for name, v in raw.items()}
    return with_residual_other(window, audio.samples[:, start:stop])
