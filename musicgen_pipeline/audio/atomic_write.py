"""Writing audio files so that a failure leaves nothing behind and says why in words.

`write_audio_atomic(path, audio)` (16-bit PCM WAV, FLAC or OGG, as `io.write_audio`) and
`write_float_wav_atomic(path, audio)` (exact float32 WAV for intermediates) encode the file in
memory, write it to a hidden temporary name in the destination folder (`.<name>.<pid>.part`), flush
it to disk and rename it over `path`. A full disk, a read-only or missing folder, a file-size limit or
a destination like `/proc/x.wav` raises `AudioWriteError`, an `InputError` whose one line names the
destination and the operating system's reason ("no space left on device"), and removes the temporary
file: the destination is either the complete new file or untouched, never truncated or 0 bytes.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from musicgen_pipeline.audio.io import WRITE_FORMATS, Audio, check_audio
from musicgen_pipeline.errors import InputError


class AudioWriteError(InputError):
    """An output file could not be written; the message names the file and the reason in words."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return " ".join(str(getattr(exc, "error_string", "") or exc).split())


def encode_audio(audio: Audio, container: str, subtype: str, *, clip: bool) -> bytes:
    samples = np.clip(audio.samples, -1.0, 1.0) if clip else audio.samples
    buffer = io.BytesIO()
    sf.write(buffer, samples.T, audio.sample_rate, format=container, subtype=subtype)
    return buffer.getvalue()


def write_bytes_atomic(path: Path, data: bytes, shown: str | None = None) -> Path:
    """Write `data` to `path` through a temporary file and a rename; `AudioWriteError` on failure."""
    shown = shown or str(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise AudioWriteError(f"{shown}: cannot write the file ({_reason(exc)})") from None
    return path


def check_writable(path: Path, shown: str | None = None) -> None:
    """Fail now, in words, when `path` cannot be written (before minutes of work are spent on it):
    creates and removes the temporary file `write_bytes_atomic` would use."""
    write_bytes_atomic(path.with_name(f".{path.name}.{os.getpid()}.probe"), b"", shown or str(path))
    with contextlib.suppress(OSError):
        path.with_name(f".{path.name}.{os.getpid()}.probe").unlink()


def write_audio_atomic(
    path: str | Path, audio: Audio, *, format: str | None = None, shown: str | None = None
) -> Path:
    """`io.write_audio` (format from `format` or the suffix, samples clipped to [-1, 1]), atomically."""
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".") or "wav").lower()
    if fmt not in WRITE_FORMATS:
        raise InputError(f"output format {fmt!r} is not supported (use one of {sorted(WRITE_FORMATS)})")
    if path.suffix.lower() != f".{fmt}":
        path = path.with_suffix(f".{fmt}")
    check_audio(audio, shown or str(path))
    container, subtype = WRITE_FORMATS[fmt]
    return write_bytes_atomic(path, encode_audio(audio, container, subtype, clip=True), shown)


def write_float_wav_atomic(path: Path, audio: Audio, shown: str | None = None) -> Path:
    """float32 WAV, bit-exact (no clipping), atomically."""
    return write_bytes_atomic(path, encode_audio(audio, "WAV", "FLOAT", clip=False), shown)
