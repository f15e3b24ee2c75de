"""The one check for audio files from outside (uploads, fetched URLs, CLI inputs, melody references).

`check_audio_file(path, name, limits)` reads the header, then decodes the whole file in blocks (never
holding it all), and returns its `AudioFileInfo` or raises `InputError` with one line that starts with
`name` (the caller's name for the file: the client's file name or URL, a CLI argument; never a
server path) and names the problem:

- empty (0 bytes), not decodable, or a header that declares no samples;
- a sample rate outside [`min_sample_rate`, `max_sample_rate`] (a 1 Hz file of 84 bytes would
  otherwise become minutes of work once resampled), more than `max_channels` channels;
- longer than `max_seconds` (work is bounded by duration, not only by bytes);
- a header that lies: it declares more audio than the file holds, or decoding fails part way;
- NaN or infinite samples.

`probe_audio_file` does only the header checks (cheap; for files about to be read by `read_audio`).
Pure audio layer: no settings, no dagster; callers pass limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from musicgen_pipeline.errors import InputError

BLOCK_FRAMES = 65_536
# Decoders may legitimately deliver a little less than the header's count (encoder padding).
_SHORTFALL_TOLERANCE = 0.01


@dataclass(frozen=True)
class AudioLimits:
    """What audio the pipeline accepts. The default rate range covers telephone to studio audio."""

    min_sample_rate: int = 8_000
    max_sample_rate: int = 384_000
    max_channels: int = 2
    max_seconds: float | None = None  # None: no bound on duration


DEFAULT_AUDIO_LIMITS = AudioLimits()


@dataclass(frozen=True)
class AudioFileInfo:
    format: str  # libsndfile's major format (WAV, FLAC, OGG, ...)
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def probe_audio_file(
    path: str | Path, name: str, limits: AudioLimits = DEFAULT_AUDIO_LIMITS
) -> AudioFileInfo:
    """Header checks only: decodable, not empty, rate, channels and duration within `limits`."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"{name}: file not found") from None
    if path.is_dir():
        raise InputError(f"{name}: is a directory, not an audio file")
    if size == 0:
        raise InputError(f"{name}: is empty (0 bytes)")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        reason = " ".join(str(getattr(exc, "error_string", "") or "unknown format").split())
        raise InputError(
            f"{name}: not a readable audio file; it is not an audio file libsndfile can decode ({reason})"
        ) from None
    rate, channels, frames = int(info.samplerate), int(info.channels), int(info.frames)
    if frames <= 0 or rate <= 0 or channels <= 0:
        raise InputError(f"{name}: holds no audio samples (audio is empty)")
    if not limits.min_sample_rate <= rate <= limits.max_sample_rate:
        raise InputError(
            f"{name}: sample rate {rate} Hz is outside {limits.min_sample_rate}-{limits.max_sample_rate} Hz"
        )
    if channels > limits.max_channels:
        raise InputError(
            f"{name}: has {channels} channels; at most {limits.max_channels} (mono or stereo) are supported"
        )
    found = AudioFileInfo(str(info.format), rate, channels, frames)
    if limits.max_seconds is not None and found.duration > limits.max_seconds:
        raise InputError(
            f"{name}: lasts {found.duration:.1f} s, longer than the limit of {limits.max_seconds:g} s"
        )
    return found


def check_audio_file(
    path: str | Path, name: str, limits: AudioLimits = DEFAULT_AUDIO_LIMITS
) -> AudioFileInfo:
    """`probe_audio_file`, then decode every block: the header's length holds and every sample is finite."""
    info = probe_audio_file(path, name, limits)
    decoded = 0
    try:
        with sf.SoundFile(str(path)) as handle:
            for block in handle.blocks(blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):
                if not np.isfinite(block).all():
                    raise InputError(f"{name}: audio contains NaN or infinite samples")
                decoded += len(block)
    except (sf.LibsndfileError, RuntimeError) as exc:
        reason = " ".join(str(getattr(exc, "error_string", "") or exc).split())
        raise InputError(
            f"{name}: its header declares {info.duration:.2f} s but decoding failed after "
            f"{decoded / info.sample_rate:.2f} s ({reason})"
        ) from None
    if decoded < info.frames * (1 - _SHORTFALL_TOLERANCE):
        raise InputError(
            f"{name}: its header declares {info.duration:.2f} s but the file holds "
            f"{decoded / info.sample_rate:.2f} s"
        )
    return AudioFileInfo(info.format, info.sample_rate, info.channels, decoded)
