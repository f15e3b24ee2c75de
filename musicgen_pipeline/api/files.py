"""`GET /files/{filename}`: result files by their flat contract names, nothing outside the outputs.

A name is percent-decoded until it stops changing (so `%2e%2e%2f` and `%252e%252e%252f` are seen as
`../`), backslashes count as separators, and the final path is resolved (symlinks included) and must
lie inside `$MUSICGEN_DATA/outputs/`; anything else is 403 `Access denied`. Flat names
(`<job_id>_soundtrack.wav`, `<job_id>_drums.wav`, ...) map to the files of the job's partition;
any other audio file name is looked up relative to the outputs folder (requests, logs and
other non-audio files there are never served). A name no file can have (a component over 255 bytes)
or one the filesystem refuses to look up is 404, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

ACCESS_DENIED = "Access denied"
FILE_NOT_FOUND = "File not found"
_MAX_DECODE_ROUNDS = 8
_MAX_NAME_BYTES = 255  # NAME_MAX: a longer component names no file (and would be ENAMETOOLONG)


class FileAccessError(Exception):
    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


def fully_decoded(name: str) -> str:
    for _ in range(_MAX_DECODE_ROUNDS):
        decoded = unquote(name)
        if decoded == name:
            return name
        name = decoded
    raise FileAccessError(403, ACCESS_DENIED)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def resolve_output_file(outputs_dir: Path, filename: str, flat_lookup: Callable[[str], Path | None]) -> Path:
    """The file to serve for `filename`, or `FileAccessError` (403 outside outputs, 404 missing)."""
    name = fully_decoded(filename).replace("\\", "/")
    if "\x00" in name or name.startswith("/") or any(part == ".." for part in name.split("/")):
        raise FileAccessError(403, ACCESS_DENIED)
    if any(len(part.encode("utf-8", "surrogateescape")) > _MAX_NAME_BYTES for part in name.split("/")):
        raise FileAccessError(404, FILE_NOT_FOUND)
    root = outputs_dir.resolve()
    candidate = flat_lookup(name) if "/" not in name else None
    if candidate is None:
        candidate = root / name
        if candidate.suffix.lower() not in MEDIA_TYPES:  # only audio is public, never requests or logs
            if not _inside(candidate.resolve(strict=False), root):
                raise FileAccessError(403, ACCESS_DENIED)
            raise FileAccessError(404, FILE_NOT_FOUND)
    try:
        resolved = candidate.resolve(strict=False)
    except (OSError, RuntimeError, ValueError):
        raise FileAccessError(403, ACCESS_DENIED) from None
    if not _inside(resolved, root):
        raise FileAccessError(403, ACCESS_DENIED)
    try:
        found = resolved.is_file()
    except OSError:  # ENAMETOOLONG, EACCES, ...: nothing the client may read
        found = False
    if not found:
        raise FileAccessError(404, FILE_NOT_FOUND)
    return resolved


MEDIA_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".mp3": "audio/mpeg"}


def media_type(path: Path) -> str:
    return MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
