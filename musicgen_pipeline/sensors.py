"""Sensors: the drop folder (``$MUSICGEN_DATA/inbox/``) and the catalog refresh after each render.

Drop folder, per tick:
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

import dagster as dg

from musicgen_pipeline.errors import InputError
from musicgen_pipeline.launch import CATALOG_JOB, RENDER_JOB, ensure_pools, run_tags, store_request
from musicgen_pipeline.request import (
    Problem,
    RequestError,
    SoundtrackRequest,
    load_json_text,
    requests_in_document,
)
from musicgen_pipeline.settings import get_settings

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


def read_requests(path: Path) -> list[SoundtrackRequest]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(
            [Problem("<file>", path.name, f"is not UTF-8 text ({exc.reason})")], path.name
        ) from None
    raw = load_json_text(text, source=path.name)
    return requests_in_document(raw, source=path.name, name=path.stem)


def _run_request(request: SoundtrackRequest, key: str, source: str) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=key,
        partition_key=key,
        job_name=RENDER_JOB,
        tags={**run_tags(request), "musicgen/source": source},
    )


@dataclass
class InboxTick:
    run_requests: list[dg.RunRequest]
    new_partitions: list[str]
    accepted: list[Path]
    rejected: list[Path]
    cursor: float
    skip_reason: str | None


def process_inbox(data_dir: Path, cursor: float, *, max_batch: int, settle_seconds: float) -> InboxTick:
    """One tick of the drop-folder sensor, as plain Python (the sensor wraps it; tests call either)."""
    inbox = data_dir / "inbox"
    accepted_dir, rejected_dir = inbox / ACCEPTED, inbox / REJECTED
    run_requests: list[dg.RunRequest] = []
    partitions: list[str] = []
    new_cursor = cursor

    # 1. re-emit what an interrupted tick moved but may not have requested (run keys dedupe).
    if accepted_dir.is_dir():
        for path in sorted(accepted_dir.glob("*.json"), key=lambda p: p.stat().st_ctime_ns):
            ctime = path.stat().st_ctime_ns / 1e9
            if ctime <= cursor:
                continue
            try:
                for request in read_requests(path):
                    key = store_request(request)
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
            requests = read_requests(path)
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
        keys = [store_request(r) for r in requests]
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


def build_inbox_sensor(render_job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        name="inbox_sensor",
        job=render_job,
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Renders every *.json request dropped into $MUSICGEN_DATA/inbox/ (batched, idempotent).",
    )
    def inbox_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        settings = get_settings()
        ensure_pools(context.instance)
        cursor = float(context.cursor) if context.cursor else 0.0
        tick = process_inbox(
            settings.data_dir,
            cursor,
            max_batch=settings.sensor_max_batch,
            settle_seconds=settings.sensor_settle_seconds,
        )
        for path in tick.rejected:
            context.log.warning(f"rejected {path.name}: see {path.with_name(path.stem + '.error.json')}")
        from musicgen_pipeline.assets.partitions import soundtrack_partitions

        new = [
            k
            for k in tick.new_partitions
            if not context.instance.has_dynamic_partition(soundtrack_partitions.name, k)
        ]
        return dg.SensorResult(
            run_requests=tick.run_requests,
            dynamic_partitions_requests=[soundtrack_partitions.build_add_request(new)] if new else [],
            cursor=repr(tick.cursor),
            skip_reason=tick.skip_reason,
        )

    return inbox_sensor


def build_catalog_sensor(
    render_job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition,
    catalog_job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition,
) -> dg.RunStatusSensorDefinition:
    @dg.run_status_sensor(
        name="catalog_after_render",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[render_job],
        request_job=catalog_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Refreshes the catalog table after every successful {RENDER_JOB} run.",
    )
    def catalog_after_render(context: dg.RunStatusSensorContext) -> dg.RunRequest:
        return dg.RunRequest(run_key=f"catalog-{context.dagster_run.run_id}", job_name=CATALOG_JOB)

    return catalog_after_render
