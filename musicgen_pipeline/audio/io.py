"""Reading, writing and resampling audio; the `Audio` value every layer passes around."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from musicgen_pipeline.errors import InputError

# Formats we write; reading takes whatever libsndfile can decode (WAV, FLAC, OGG, and MP3 where built in).
WRITE_FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}


@dataclass(frozen=True)
class Audio:
    """float32 samples shaped (channels, frames) and their sample rate."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples, dtype=np.float32)
        if samples.ndim == 1:
            samples = samples[np.newaxis, :]
        if samples.ndim != 2:
            raise ValueError(f"audio samples must be (channels, frames), got shape {samples.shape}")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        object.__setattr__(self, "samples", samples)

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def frames(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    def mono(self) -> np.ndarray:
        """The channel average as a 1-D array (analysis input)."""
        return self.samples.mean(axis=0)

    def with_channels(self, channels: int) -> Audio:
        """Mono <-> stereo by duplication / averaging."""
        if channels == self.channels:
            return self
        if channels == 1:
            return Audio(self.samples.mean(axis=0, keepdims=True), self.sample_rate)
        if self.channels == 1:
            return Audio(np.repeat(self.samples, channels, axis=0), self.sample_rate)
        raise ValueError(f"cannot convert {self.channels} channels to {channels}")

    def slice_seconds(self, start: float, stop: float | None = None) -> Audio:
        a = max(0, round(start * self.sample_rate))
        b = self.frames if stop is None else min(self.frames, round(stop * self.sample_rate))
        return Audio(self.samples[:, a:b], self.sample_rate)


def check_audio(audio: Audio, name: str = "audio") -> Audio:
    """Refuse audio no stage can work with: empty, or with NaN/inf samples."""
    if audio.frames == 0:
        raise InputError(f"{name}: audio is empty (0 samples)")
    if not np.all(np.isfinite(audio.samples)):
        raise InputError(f"{name}: audio contains NaN or infinite samples")
    return audio


def read_audio(path: str | Path, *, sample_rate: int | None = None) -> Audio:
    """Read any format libsndfile decodes, mono or stereo at 8-384 kHz (`validation.AudioLimits`);
    optionally resample."""
    from musicgen_pipeline.audio.validation import probe_audio_file

    path = Path(path)
    probe_audio_file(path, str(path))  # missing, empty, undecodable, 1 Hz or 8-channel: one line
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise InputError(f"{path}: not a readable audio file ({exc})") from None
    audio = check_audio(Audio(data.T, int(rate)), str(path))
    return resample(audio, sample_rate) if sample_rate else audio


def write_audio(path: str | Path, audio: Audio, *, format: str | None = None) -> Path:
    """Write 16-bit PCM WAV (default, readable by Python's `wave`), FLAC on request, or OGG.

    The format comes from `format` or the file suffix. Samples are clipped to [-1, 1] first.
    """
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".") or "wav").lower()
    if fmt not in WRITE_FORMATS:
        raise InputError(f"output format {fmt!r} is not supported (use one of {sorted(WRITE_FORMATS)})")
    if path.suffix.lower() != f".{fmt}":
        path = path.with_suffix(f".{fmt}")
    check_audio(audio, str(path))
    container, subtype = WRITE_FORMATS[fmt]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(
        str(path), np.clip(audio.samples, -1.0, 1.0).T, audio.sample_rate, format=container, subtype=subtype
    )
    return path


def resample(audio: Audio, target_rate: int) -> Audio:
    """High-quality resampling (soxr VHQ)."""
    if target_rate == audio.sample_rate:
        return audio
    out = soxr.resample(audio.samples.T, audio.sample_rate, target_rate, quality="VHQ")
    return Audio(np.ascontiguousarray(np.asarray(out, dtype=np.float32).T), target_rate)
