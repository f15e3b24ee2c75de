"""Retention: what the scheduled cleanup removes, and the free-space check before a job starts.

Plain Python (no Dagster): `defs/retention.py` runs `cleanup` on a schedule (RETENTION_CRON) with the
partition keys of the runs still queued or in progress; the entry points call `check_free_space`.

`cleanup(data_dir, policy, active_keys)` removes
- uploads and fetched inputs (``$MUSICGEN_DATA/uploads/``: `/separate` files, fetched ``audio_url``
  and ``melody_audio_url`` downloads, abandoned ``.upload-*`` / ``.download-*`` temporaries) older
  than `policy.upload_max_age_seconds` (RETENTION_UPLOAD_HOURS, default 24 h);
- opt-in, partitions ``$MUSICGEN_DATA/outputs/<key>/`` whose newest file is older than
  `policy.output_max_age_seconds` (RETENTION_OUTPUT_DAYS; 0, the default, keeps outputs forever),
  together with that partition's pickled asset outputs (``<asset_storage_dir>/<asset>/<key>``, the IO
  manager's), so a later run never loads a value that points at removed files.

It never touches a running job's files: every input referenced by an active partition (the
separation input, a request's melody) and every active partition's folder is kept whatever its age.
Only regular files and folders inside those two folders are removed, never a link's target.

`check_free_space(folder, min_free_bytes, what)` raises `InsufficientSpaceError` (an `InputError`:
one line, exit 2 / HTTP 507 / a failed run before anything is written) when the disk holding `folder`
has less free space than MIN_FREE_DISK_MB.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from musicgen_pipeline.errors import InputError
from musicgen_pipeline.partition_store import PartitionStore, read_json_object

UPLOADS = "uploads"


class InsufficientSpaceError(InputError):
    """Too little free disk space to start a job; the message names the folder and both amounts."""


def check_free_space(folder: Path, min_free_bytes: int, what: str = "job") -> int:
    """The free bytes on the disk holding `folder` (its nearest existing parent); `InsufficientSpaceError`
    below `min_free_bytes`."""
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < min_free_bytes:
        raise InsufficientSpaceError(
            f"{what} not started: {free / 1e6:.0f} MB free on the disk holding {folder}, "
            f"below MIN_FREE_DISK_MB={min_free_bytes / 1e6:g} MB (free space, or lower the setting)"
        )
    return free


@dataclass(frozen=True)
class RetentionPolicy:
    upload_max_age_seconds: float  # RETENTION_UPLOAD_HOURS
    output_max_age_seconds: float | None = None  # RETENTION_OUTPUT_DAYS; None: outputs are kept


@dataclass
class CleanupReport:
    removed: list[Path] = field(default_factory=list)
    kept_in_use: list[Path] = field(default_factory=list)  # old enough, but used by an active job
    freed_bytes: int = 0

    def summary(self) -> str:
        return (
            f"removed {len(self.removed)} item(s), {self.freed_bytes / 1e6:.1f} MB; "
            f"kept {len(self.kept_in_use)} old item(s) in use by queued or running jobs"
        )


def _inputs_of(store: PartitionStore, key: str) -> set[Path]:
    """The upload/fetched files an active partition reads (separation input, request melody)."""
    out: set[Path] = set()
    with contextlib.suppress(Exception):  # a partition without one of these files
        out.add(store.read_separation_request(key)[0])
    with contextlib.suppress(Exception):  # the stored request as written (not re-validated)
        melody = read_json_object(store.files(key).request).get("melody")
        if isinstance(melody, str) and melody:
            out.add(Path(melody))
    return {p.resolve() for p in out}


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).lstat().st_size
    return total


def _newest_mtime(folder: Path) -> float:
    newest = folder.lstat().st_mtime
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                newest = max(newest, (Path(root) / name).lstat().st_mtime)
    return newest


def _remove(path: Path, report: CleanupReport) -> None:
    try:
        size = _size(path)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return
    report.removed.append(path)
    report.freed_bytes += size


def cleanup(
    data_dir: Path,
    policy: RetentionPolicy,
    active_keys: Iterable[str],
    *,
    asset_storage_dir: Path | None = None,
    now: float | None = None,
) -> CleanupReport:
    """Remove expired uploads (and, opt-in, expired outputs and their asset pickles under
    `asset_storage_dir`), keeping everything active jobs use."""
    now = time.time() if now is None else now
    store = PartitionStore.for_data_dir(data_dir)
    active = set(active_keys)
    in_use: set[Path] = set()
    for key in active:
        in_use |= _inputs_of(store, key)
    report = CleanupReport()

    uploads = data_dir / UPLOADS
    if uploads.is_dir():
        for path in sorted(uploads.iterdir()):
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
                continue
            if now - info.st_mtime < policy.upload_max_age_seconds:
                continue
            if path.resolve() in in_use or path.absolute() in in_use:
                report.kept_in_use.append(path)
                continue
            _remove(path, report)

    outputs = store.outputs_dir
    if policy.output_max_age_seconds is not None and outputs.is_dir():
        for folder in sorted(outputs.iterdir()):
            if folder.is_symlink() or not folder.is_dir():
                continue
            if now - _newest_mtime(folder) < policy.output_max_age_seconds:
                continue
            if folder.name in active:
                report.kept_in_use.append(folder)
                continue
            _remove(folder, report)
            if asset_storage_dir is not None and asset_storage_dir.is_dir():
                for pickled in sorted(asset_storage_dir.glob(f"*/{folder.name}")):
                    if not pickled.is_symlink():
                        _remove(pickled, report)
    return report
