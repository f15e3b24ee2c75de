"""Receiving audio from clients: streamed multipart uploads with a size limit, and the audio check.

An upload is streamed into a temporary file and cut off as soon as the body passes the limit
(`MAX_UPLOAD_MB`), before any of it is trusted. `_store` then checks the bytes with
`audio.validation.check_audio_file` (decodable by libsndfile whatever the client's file name or content
type says, sample rate, channels, duration `API_MAX_AUDIO_SECONDS`, header length, finite samples;
messages name the client's file, never a server path) and moves them under
`$MUSICGEN_DATA/uploads/` as `<job_id>.<detected format>`: the client never chooses a stored name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path

import anyio
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from musicgen_pipeline.api.fetch import FetchError
from musicgen_pipeline.audio.validation import DEFAULT_AUDIO_LIMITS, AudioLimits, check_audio_file
from musicgen_pipeline.errors import InputError

# Room for the multipart framing and the small form fields around the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# libsndfile major format -> the suffix we store under.
_SUFFIXES = {
    "WAV": "wav",
    "WAVEX": "wav",
    "FLAC": "flac",
    "OGG": "ogg",
    "MP3": "mp3",
    "AIFF": "aiff",
    "CAF": "caf",
}


class UploadTooLarge(FetchError):
    def __init__(self, size: int, limit: int, *, at_least: bool = False) -> None:
        prefix = "more than " if at_least else ""
        super().__init__(
            413,
            f"file: upload is {prefix}{size / 1e6:.1f} MB, above the limit of {limit / 1e6:.1f} MB (MAX_UPLOAD_MB)",
        )


@dataclass(frozen=True)
class StoredAudio:
    path: Path
    format: str
    sample_rate: int
    channels: int
    duration: float


@dataclass
class MultipartUpload:
    """The `file` part (spooled to a temporary file) and the plain form fields."""

    file: UploadFile | None
    fields: dict[str, str]


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise UploadTooLarge(received, limit - MULTIPART_OVERHEAD_BYTES, at_least=True)
        yield chunk


async def read_multipart(request: Request, max_file_bytes: int) -> MultipartUpload:
    """Parse a multipart body whose total size may not pass `max_file_bytes` plus framing."""
    limit = max_file_bytes + MULTIPART_OVERHEAD_BYTES
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UploadTooLarge(int(declared) - MULTIPART_OVERHEAD_BYTES, max_file_bytes)
    parser = MultiPartParser(request.headers, _limited(request, limit), max_files=4, max_fields=32)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise FetchError(400, f"body: malformed multipart form ({exc.message})") from None
    except ClientDisconnect:
        raise FetchError(400, "body: the client disconnected during the upload") from None
    upload: UploadFile | None = None
    fields: dict[str, str] = {}
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name == "file" and upload is None:
                upload = value
            else:
                await value.close()
        elif name not in fields:
            fields[name] = value
    if upload is not None and upload.size is not None and upload.size > max_file_bytes:
        await upload.close()
        raise UploadTooLarge(upload.size, max_file_bytes)
    return MultipartUpload(upload, fields)


def _store(
    source: Path, uploads_dir: Path, job_id: str, field: str, shown_name: str, limits: AudioLimits
) -> StoredAudio:
    try:
        info = check_audio_file(source, shown_name, limits)
    except InputError as exc:
        raise FetchError(400, f"{field}: {exc}") from None
    suffix = _SUFFIXES.get(info.format, info.format.lower() or "audio")
    uploads_dir.mkdir(parents=True, exist_ok=True)
    dest = uploads_dir / f"{job_id}.{suffix}"
    os.replace(source, dest)
    return StoredAudio(dest, suffix, info.sample_rate, info.channels, info.duration)


async def store_upload(
    upload: UploadFile, uploads_dir: Path, job_id: str, limits: AudioLimits = DEFAULT_AUDIO_LIMITS
) -> StoredAudio:
    """Copy the spooled upload to disk, check it is audio, and keep it as `<job_id>.<format>`."""
    uploads_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".upload-", dir=uploads_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            await upload.seek(0)
            while chunk := await upload.read(1024 * 1024):
                await anyio.to_thread.run_sync(out.write, chunk)
        shown = repr(upload.filename) if upload.filename else "the upload"
        return await anyio.to_thread.run_sync(_store, tmp, uploads_dir, job_id, "file", shown, limits)
    finally:
        tmp.unlink(missing_ok=True)
        await upload.close()


async def store_download(
    path: Path,
    uploads_dir: Path,
    job_id: str,
    field: str,
    url: str,
    limits: AudioLimits = DEFAULT_AUDIO_LIMITS,
) -> StoredAudio:
    """Check a downloaded file is audio and keep it as `<job_id>[-suffix].<format>`."""
    try:
        return await anyio.to_thread.run_sync(
            _store, path, uploads_dir, job_id, field, f"the file at {url[:200]}", limits
        )
    finally:
        path.unlink(missing_ok=True)
