"""The drop folder (``$MUSICGEN_DATA/inbox/``): what one tick of the inbox sensor does with its files.

Plain Python (no Dagster): the sensor (`defs/sensors.py`) turns an `InboxTick` into Dagster's
run and partition requests. Per tick:
1. Files already moved to ``inbox/accepted/`` after the cursor (a tick that crashed after moving them,
   before Dagster stored its result) are emitted again; their run keys make that harmless.
2. Up to SENSOR_MAX_BATCH ``*.json`` files from the inbox, oldest first, skipping ``*.tmp``, hidden
   files and files modified in the last SENSOR_SETTLE_SECONDS (still being written).
3. A valid file (one request, or ``{"requests": [...]}``) stores each request, becomes a partition
   and a run request whose run key is the partition key (content based: same content => no second
   run), and moves to ``accepted/``. An invalid one gets ``rejected/<name>.error.json`` naming every
   problem (field, value, limit), then moves to ``rejected/``. Files are only ever renamed, never
   deleted; a name already taken gets a numeric suffix.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from musicgen_pipeline.errors import InputError
from musicgen_pipeline.naming import RENDER_JOB, SOURCE_TAG, run_tags
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.request import (
    Problem,
    RequestError,
    SoundtrackRequest,
    load_json_text,
    requests_in_document,
)

ACCEPTED = "accepted"
REJECTED = "rejected"


@dataclass(frozen=True)
class InboxScan:
    ready: list[Path]  # to process this tick (at most the batch size)
    waiting: int  # ready files left for later ticks (batch full)
    settling: list[Path]  # still being written


def scan_inbox(inbox: Path, *, max_batch: int, settle_seconds: float, now: float | None = None) -> InboxScan:
    now = time.time() if now is None else now
    if not inbox.is_dir():
        return InboxScan([], 0, [])
    ready: list[tuple[float, str, Path]] = []
    settling: list[Path] = []
    for path in inbox.iterdir():
        if not path.is_file() or path.name.startswith(".") or path.suffix.lower() != ".json":
            continue  # *.tmp, *.json.part, folders, hidden files
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            continue
        if now - mtime < settle_seconds:
            settling.append(path)
        else:
            ready.append((mtime, path.name, path))
    ready.sort()
    return InboxScan([p for _, _, p in ready[:max_batch]], max(0, len(ready) - max_batch), settling)


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while target.exists():
        target = folder / f"{stem}-{n}{suffix}"
        n += 1
    return target


def move_into(path: Path, folder: Path) -> Path:
    """Rename `path` into `folder` (atomic on one filesystem) without overwriting anything."""
    folder.mkdir(parents=True, exist_ok=True)
    target = _free_name(folder, path.name)
    os.replace(path, target)
    return target


def read_requests(path: Path, *, default_model: str | None = None) -> list[SoundtrackRequest]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(
            [Problem("<file>", path.name, f"is not UTF-8 text ({exc.reason})")], path.name
        ) from None
    raw = load_json_text(text, source=path.name)
    return requests_in_document(raw, source=path.name, name=path.stem, default_model=default_model)


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
        tags={**run_tags(request), SOURCE_TAG: source},
    )


@dataclass
class InboxTick:
    run_requests: list[PlannedRun]
    new_partitions: list[str]
    accepted: list[Path]
    rejected: list[Path]
    cursor: float
    skip_reason: str | None


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
    run_requests: list[PlannedRun] = []
    partitions: list[str] = []
    new_cursor = cursor

    # 1. re-emit what an interrupted tick moved but may not have requested (run keys dedupe).
    if accepted_dir.is_dir():
        for path in sorted(accepted_dir.glob("*.json"), key=lambda p: p.stat().st_ctime_ns):
            ctime = path.stat().st_ctime_ns / 1e9
            if ctime <= cursor:
                continue
            try:
                for request in read_requests(path, default_model=default_model):
                    key = store.save_request(request)
                    partitions.append(key)
                    run_requests.append(_run_request(request, key, path.name))
            except InputError:
                continue  # cannot happen for a file we accepted; never re-judge or move it
            new_cursor = max(new_cursor, ctime)

    # 2. new files.
    scan = scan_inbox(inbox, max_batch=max_batch, settle_seconds=settle_seconds)
    accepted: list[Path] = []
    rejected: list[Path] = []
    unreadable: list[str] = []
    for path in scan.ready:
        try:
            requests = read_requests(path, default_model=default_model)
        except (
            OSError
        ) as exc:  # vanished (moved by someone else) or not readable yet: leave it, never lose it
            unreadable.append(f"{path.name} ({exc.strerror or exc})")
            continue
        except RequestError as exc:
            rejected_dir.mkdir(parents=True, exist_ok=True)
            error_file = rejected_dir / f"{path.stem}.error.json"
            target = _free_name(rejected_dir, path.name)
            if target.name != path.name:
                error_file = rejected_dir / f"{target.stem}.error.json"
            error_file.write_text(json.dumps(exc.as_dict(), indent=2) + "\n", encoding="utf-8")
            os.replace(path, target)
            rejected.append(target)
            continue
        keys = [store.save_request(r) for r in requests]
        target = move_into(path, accepted_dir)
        accepted.append(target)
        new_cursor = max(new_cursor, target.stat().st_ctime_ns / 1e9)
        for request, key in zip(requests, keys, strict=True):
            partitions.append(key)
            run_requests.append(_run_request(request, key, target.name))

    skip = None
    if not run_requests:
        waiting = f"; {len(scan.settling)} file(s) still being written" if scan.settling else ""
        unread = f"; left unreadable: {', '.join(unreadable)}" if unreadable else ""
        skip = (
            f"no new requests in {inbox}"
            + (f" ({len(rejected)} rejected)" if rejected else "")
            + waiting
            + unread
        )
    return InboxTick(run_requests, list(dict.fromkeys(partitions)), accepted, rejected, new_cursor, skip)
