"""The drop folder (``$MUSICGEN_DATA/inbox/``): what one tick of the inbox sensor does with its files.

Plain Python (no Dagster): the sensor (`defs/sensors.py`) turns an `InboxTick` into Dagster's
run and partition requests. Per tick:
1. Files already moved to ``inbox/accepted/`` after the cursor (a tick that crashed after moving them,
   before Dagster stored its result) are emitted again (any case of ``.json``); their run keys make
   that harmless.
2. Rejected files changed since their rejection (a slow writer that paused longer than
   SENSOR_SETTLE_SECONDS and then finished) are judged again: valid now, they are accepted; still
   invalid, their report is rewritten. So a file that later becomes valid is never stranded.
3. Up to SENSOR_MAX_BATCH ``*.json`` entries from the inbox (any case), oldest first, skipping
   ``*.tmp``, hidden files and files modified in the last SENSOR_SETTLE_SECONDS (still being written).
   The safe way to drop a file is to write ``NAME.json.tmp`` (or ``.NAME.json``) and rename it.
4. Anything that is not a regular file with one link (a symbolic link, a hard link, a FIFO, a folder
   named ``*.json``) is moved to ``rejected/`` unread, with the reason. A regular file is opened without
   following links and read by the one safe JSON reader (size, UTF-8, nesting, numbers, strings).
5. A valid file (one request, or ``{"requests": [...]}``) stores each request, becomes a partition
   and a run request whose run key is the partition key, and moves to ``accepted/``. The key depends
   on the request's content only, never on the file's name: the same request dropped as ``a.json``
   and ``b.json`` is one partition and one run. An invalid file moves to ``rejected/`` with
   ``<name>.error.json`` beside it naming every problem (field, value, limit). Any failure while
   judging one file (whatever the exception) rejects that file with the reason and never stops the
   tick: every file ends in ``accepted/`` with a run or in ``rejected/`` with a reason.

Files are only ever renamed, never deleted; a name already taken (by a file or a report) gets a
numeric suffix, and reports are created exclusively, so no user file is ever overwritten.

What a tick did is said in words (`InboxTick.outcome`: accepted files, rejected files with their first
problem, files left for later), and the cursor is stored as an ISO 8601 UTC time a person can read
(`cursor_text` / `cursor_time`; a cursor stored by an older version as seconds is still understood).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import stat
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from musicgen_pipeline import safe_json
from musicgen_pipeline.errors import InputError
from musicgen_pipeline.naming import RENDER_JOB, run_tags
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.request import (
    Problem,
    RequestError,
    SoundtrackRequest,
    load_json_text,
    requests_in_document,
)
from musicgen_pipeline.safe_json import DEFAULT_LIMITS

ACCEPTED = "accepted"
REJECTED = "rejected"
# A rejected file that changes within this long after its rejection is judged again (a slow writer).
RECHECK_REJECTED_SECONDS = 3600.0


@dataclass(frozen=True)
class InboxScan:
    ready: list[Path]  # to process this tick (at most the batch size)
    waiting: int  # ready files left for later ticks (batch full)
    settling: list[Path]  # still being written


def _is_candidate(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(".json")


def scan_inbox(inbox: Path, *, max_batch: int, settle_seconds: float, now: float | None = None) -> InboxScan:
    """Entries named ``*.json`` (any case; not hidden) whose last change is older than `settle_seconds`,
    oldest first. Links are not followed: `lstat` describes the entry itself."""
    now = time.time() if now is None else now
    if not inbox.is_dir():
        return InboxScan([], 0, [])
    ready: list[tuple[float, str, Path]] = []
    settling: list[Path] = []
    for path in inbox.iterdir():
        if not _is_candidate(path.name) or path.name in (ACCEPTED, REJECTED):
            continue  # *.tmp, *.json.part, hidden files, our folders
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode) and now - info.st_mtime < settle_seconds:
            settling.append(path)
        else:
            ready.append((info.st_mtime, path.name, path))
    ready.sort()
    return InboxScan([p for _, _, p in ready[:max_batch]], max(0, len(ready) - max_batch), settling)


def _free_names(folder: Path, name: str) -> tuple[Path, Path]:
    """A free name for a rejected file and for its report (``<stem>.error.json``), both unused."""
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 0
    while True:
        base = stem if n == 0 else f"{stem}-{n}"
        target, report = folder / f"{base}{suffix}", folder / f"{base}.error.json"
        if not os.path.lexists(target) and not os.path.lexists(report) and target != report:
            return target, report
        n += 1


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while os.path.lexists(target):
        target = folder / f"{stem}-{n}{suffix}"
        n += 1
    return target


def move_into(path: Path, folder: Path) -> Path:
    """Rename `path` into `folder` (atomic on one filesystem) without overwriting anything."""
    folder.mkdir(parents=True, exist_ok=True)
    target = _free_name(folder, path.name)
    os.replace(path, target)
    return target


class NotARegularFile(RequestError):
    """An inbox entry refused without being read (a link, a FIFO, a folder...)."""


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device or special file"


def _not_regular(path: Path, reason: str) -> NotARegularFile:
    return NotARegularFile(
        [Problem("<file>", None, f"{reason}; the inbox reads only regular files (it was not read)")],
        path.name,
    )


def read_document_bytes(path: Path) -> bytes:
    """The bytes of a regular, singly linked file at `path`, opened without following links and without
    blocking (a FIFO); anything else is `NotARegularFile`. At most `safe_json`'s size limit + 1 bytes."""
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        raise _not_regular(path, f"is {_kind(info.st_mode)}")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # became a link since the lstat
            raise _not_regular(path, "is a symbolic link") from None
        raise
    with os.fdopen(fd, "rb") as handle:
        opened = os.fstat(handle.fileno())
        if not stat.S_ISREG(opened.st_mode):
            raise _not_regular(path, f"is {_kind(opened.st_mode)}")
        if opened.st_nlink > 1:
            raise _not_regular(path, f"has {opened.st_nlink} hard links (drop a copy, not a link)")
        if opened.st_size > DEFAULT_LIMITS.max_bytes:
            raise RequestError(
                [
                    Problem(
                        "<file>",
                        None,
                        f"is {opened.st_size} bytes, larger than the limit of "
                        f"{DEFAULT_LIMITS.max_bytes} bytes",
                    )
                ],
                path.name,
            )
        return handle.read(DEFAULT_LIMITS.max_bytes + 1)


def read_requests(path: Path, *, default_model: str | None = None) -> list[SoundtrackRequest]:
    """The requests in one inbox file (`RequestError` naming every problem). The file's name is not
    part of any request: identical content is the same request whatever the file is called."""
    raw = load_json_text(read_document_bytes(path), source=path.name)
    return requests_in_document(raw, source=path.name, default_model=default_model)


@dataclass(frozen=True)
class PlannedRun:
    """A render the tick asks for (the sensor makes it a `dg.RunRequest`); the run key is the
    partition key, so the same content never runs twice."""

    run_key: str
    partition_key: str
    job_name: str
    tags: dict[str, str]


def _run_request(request: SoundtrackRequest, key: str, source: str) -> PlannedRun:
    return PlannedRun(
        run_key=key,
        partition_key=key,
        job_name=RENDER_JOB,
        tags=run_tags(request, source=source),
    )


def cursor_text(seconds: float) -> str:
    """The cursor as stored: ISO 8601 UTC to the microsecond, rounded up (so the file whose change time
    set it is never taken again), or "" before any file was accepted."""
    if seconds <= 0:
        return ""
    micro = math.floor(seconds * 1e6) + 1
    return datetime.fromtimestamp(micro / 1e6, tz=timezone.utc).isoformat(timespec="microseconds")


def cursor_time(text: str | None) -> float:
    """Seconds since the epoch from a stored cursor (ISO 8601, or the plain seconds older versions kept)."""
    if not text:
        return 0.0
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text).timestamp()


def first_problem(exc: RequestError) -> str:
    """The first reason a request file was rejected, in one line."""
    return str(exc.problems[0]) if exc.problems else str(exc)


@dataclass
class InboxTick:
    run_requests: list[PlannedRun]
    new_partitions: list[str]
    accepted: list[Path]
    rejected: list[Path]
    cursor: float
    skip_reason: str | None
    reasons: dict[str, str] = field(default_factory=dict)  # rejected file name -> its first problem

    @property
    def outcome(self) -> str:
        """What this tick did, in one line (the sensor logs it; the skip reason says it when idle)."""
        parts = []
        if self.accepted:
            parts.append(
                f"accepted {', '.join(p.name for p in self.accepted)} ({len(self.run_requests)} run request(s))"
            )
        for path in self.rejected:
            parts.append(f"rejected {path.name}: {self.reasons.get(path.name, 'see its .error.json')}")
        if self.skip_reason:
            parts.append(self.skip_reason)
        return "; ".join(parts) or "nothing to do"


def _write_report(report: Path, data: dict[str, Any], *, replace: bool = False) -> None:
    """Our report beside a rejected file: created exclusively (never over anyone's file), or replaced
    through a temporary name when it is our own report being rewritten."""
    text = json.dumps(data, indent=2, ensure_ascii=True) + "\n"
    if replace:
        tmp = report.with_name(f".{report.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, report)
        return
    with report.open("x", encoding="utf-8") as handle:
        handle.write(text)


def _report(exc: RequestError, target: Path, info: os.stat_result | None) -> dict[str, Any]:
    data = exc.as_dict()
    data["rejected_file"] = target.name
    regular = info is not None and stat.S_ISREG(info.st_mode)
    data["size"] = info.st_size if regular and info is not None else None
    data["mtime_ns"] = info.st_mtime_ns if regular and info is not None else None
    return data


def reject(path: Path, rejected_dir: Path, error: RequestError) -> Path:
    """Move `path` into `rejected_dir` beside ``<name>.error.json`` naming every problem; the report is
    created exclusively and both names are free, so nothing is ever overwritten."""
    rejected_dir.mkdir(parents=True, exist_ok=True)
    info = path.lstat()
    while True:
        target, report = _free_names(rejected_dir, path.name)
        try:
            _write_report(report, _report(error, target, info))
            break
        except FileExistsError:
            continue
    try:
        os.replace(path, target)
    except OSError:
        report.unlink(missing_ok=True)
        raise
    return target


def _unexpected(path: Path, exc: BaseException) -> RequestError:
    text = " ".join(str(exc).split())[:200]
    return RequestError(
        [Problem("<file>", None, f"could not be judged ({type(exc).__name__}: {text})")], path.name
    )


def _judge(path: Path, default_model: str | None) -> list[SoundtrackRequest]:
    """`read_requests`, with any failure but an `OSError` (the caller leaves the file for a later tick)
    being a `RequestError`."""
    try:
        return read_requests(path, default_model=default_model)
    except (RequestError, OSError):
        raise
    except Exception as exc:  # a poison file never stops the tick: it is rejected with the reason
        raise _unexpected(path, exc) from None


def _changed_rejections(rejected_dir: Path, now: float, settle_seconds: float) -> list[tuple[Path, Path]]:
    """(rejected file, its report) for files changed since their rejection within the last
    RECHECK_REJECTED_SECONDS and settled since (a writer that paused, then finished)."""
    if not rejected_dir.is_dir():
        return []
    out = []
    for report in rejected_dir.iterdir():
        if not report.name.endswith(".error.json"):
            continue
        try:
            if now - report.lstat().st_mtime > RECHECK_REJECTED_SECONDS:
                continue
            data = safe_json.read_json_file(report)
            name = data.get("rejected_file") if isinstance(data, dict) else None
            if not isinstance(name, str) or "/" in name or name in (".", ".."):
                continue
            target = rejected_dir / name
            info = target.lstat()
        except (OSError, InputError):
            continue
        if not stat.S_ISREG(info.st_mode) or data.get("size") is None or now - info.st_mtime < settle_seconds:
            continue
        if (info.st_size, info.st_mtime_ns) != (data.get("size"), data.get("mtime_ns")):
            out.append((target, report))
    return out


def _replay_accepted(
    accepted_dir: Path, cursor: float, store: PartitionStore, default_model: str | None, tick: InboxTick
) -> None:
    """Re-emit what an interrupted tick moved to ``accepted/`` after `cursor` but may not have
    requested (run keys dedupe); ``.json`` in any case."""
    if not accepted_dir.is_dir():
        return
    moved: list[tuple[int, Path]] = []
    for path in accepted_dir.iterdir():
        if not _is_candidate(path.name):
            continue
        try:
            info = path.lstat()
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_ctime_ns / 1e9 > cursor:
            moved.append((info.st_ctime_ns, path))
    for ctime_ns, path in sorted(moved):
        try:
            for request in read_requests(path, default_model=default_model):
                key = store.save_request(request)
                tick.new_partitions.append(key)
                tick.run_requests.append(_run_request(request, key, path.name))
        except Exception:  # accepted once (any failure now): never re-judge or move it
            continue
        tick.cursor = max(tick.cursor, ctime_ns / 1e9)


def _accept(
    path: Path, requests: list[SoundtrackRequest], accepted_dir: Path, store: PartitionStore, tick: InboxTick
) -> None:
    keys = [store.save_request(r) for r in requests]
    target = move_into(path, accepted_dir)
    tick.accepted.append(target)
    tick.cursor = max(tick.cursor, target.lstat().st_ctime_ns / 1e9)
    for request, key in zip(requests, keys, strict=True):
        tick.new_partitions.append(key)
        tick.run_requests.append(_run_request(request, key, target.name))


def _recheck_rejected(
    rejected_dir: Path,
    accepted_dir: Path,
    settle_seconds: float,
    store: PartitionStore,
    default_model: str | None,
    tick: InboxTick,
    unreadable: list[str],
) -> None:
    """Judge again the rejected files that changed after their rejection (a slow writer finished):
    valid now, they are accepted (and their stale report removed); else their report is rewritten."""
    for path, report in _changed_rejections(rejected_dir, time.time(), settle_seconds):
        try:
            requests = _judge(path, default_model)
        except RequestError as exc:
            with contextlib.suppress(OSError):
                _write_report(report, _report(exc, path, path.lstat()), replace=True)
            continue
        except OSError:
            continue
        try:
            _accept(path, requests, accepted_dir, store, tick)
        except OSError as exc:
            unreadable.append(f"{path.name} ({exc.strerror or exc})")
            continue
        report.unlink(missing_ok=True)  # our own report, now wrong


def _take_new(
    scan: InboxScan,
    accepted_dir: Path,
    rejected_dir: Path,
    store: PartitionStore,
    default_model: str | None,
    tick: InboxTick,
    unreadable: list[str],
) -> None:
    """Judge each ready file: accepted with its runs, or rejected with the reason; an `OSError`
    (vanished, not readable yet, a full disk while accepting) leaves it for a later tick."""
    for path in scan.ready:
        try:
            requests = _judge(path, default_model)
        except RequestError as exc:
            try:
                target = reject(path, rejected_dir, exc)
                tick.rejected.append(target)
                tick.reasons[target.name] = first_problem(exc)
            except OSError as move_error:  # vanished meanwhile, or the folder is not writable
                unreadable.append(f"{path.name} ({move_error.strerror or move_error})")
            continue
        except OSError as exc:
            unreadable.append(f"{path.name} ({exc.strerror or exc})")
            continue
        try:
            _accept(path, requests, accepted_dir, store, tick)
        except OSError as exc:
            unreadable.append(f"{path.name} ({exc.strerror or exc})")


def _skip_reason(inbox: Path, tick: InboxTick, scan: InboxScan, unreadable: list[str]) -> str | None:
    if tick.run_requests:
        return None
    waiting = f"; {len(scan.settling)} file(s) still being written" if scan.settling else ""
    unread = f"; left for later: {', '.join(unreadable)}" if unreadable else ""
    rejected = "".join(
        f"; rejected {p.name}: {tick.reasons.get(p.name, 'see its .error.json')}" for p in tick.rejected
    )
    return f"no new requests in {inbox}{rejected}{waiting}{unread}"


def process_inbox(
    data_dir: Path,
    cursor: float,
    *,
    max_batch: int,
    settle_seconds: float,
    default_model: str | None = None,
) -> InboxTick:
    """One tick of the drop-folder sensor, as plain Python (the sensor wraps it; tests call either).

    Requests are stored under ``<data_dir>/outputs/<key>/``; `default_model` is the model a request
    without one uses (its melody check needs it)."""
    inbox = data_dir / "inbox"
    store = PartitionStore.for_data_dir(data_dir)
    accepted_dir, rejected_dir = inbox / ACCEPTED, inbox / REJECTED
    tick = InboxTick([], [], [], [], cursor, None)
    unreadable: list[str] = []
    _replay_accepted(accepted_dir, cursor, store, default_model, tick)
    _recheck_rejected(rejected_dir, accepted_dir, settle_seconds, store, default_model, tick, unreadable)
    scan = scan_inbox(inbox, max_batch=max_batch, settle_seconds=settle_seconds)
    _take_new(scan, accepted_dir, rejected_dir, store, default_model, tick, unreadable)
    tick.new_partitions = list(dict.fromkeys(tick.new_partitions))
    tick.skip_reason = _skip_reason(inbox, tick, scan, unreadable)
    return tick
