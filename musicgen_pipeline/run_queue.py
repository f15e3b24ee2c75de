"""Bounded execution without a daemon: a first-in first-out queue of runs on disk and N run slots.

Where no Dagster daemon dequeues runs (standalone ``serve``, ``render --detach``), every run this
project starts in a detached worker process goes through this queue, so at most `limit` worker
processes exist at any time, they start in arrival order, and a waiting job costs a small file, not a
process:

- ``<queue_dir>/<arrival>-<run_id>.json``: one file per waiting run (what to start: the arguments of
  the run worker, the partition, the pending record's extra fields). `enqueue` refuses with
  `QueueFull` beyond `max_queued` waiting runs; `position` is a run's 1-based place in line.
- ``<queue_dir>/slots/slot-<i>.lock``: the run slots. The dispatcher takes a free slot with a
  non-blocking ``flock`` and hands that open file to the worker it starts; the worker holds the lock
  for as long as it lives and the kernel releases it when the worker exits for whatever reason
  (``kill -9`` included), so slots can never leak and a restart needs no clean-up.
- Warm workers: a worker that holds a slot and has finished its run may `claim` the oldest waiting run
  and run it in the same process (imports, compiled kernels and the loaded model are reused), up to a
  bound, then exits; the slot stays held throughout, so the limit holds and arrival order is kept.
- `Dispatcher`: starts the oldest waiting run whenever a slot is free. Exactly one dispatcher works
  at a time (``dispatcher.lock``): the REST server runs one in a thread for its lifetime;
  ``render --detach`` starts a detached one (`ensure_dispatcher`) that exits when the queue is empty.
  A dispatcher killed at any moment loses nothing: the next one continues from the files (a run whose
  worker had already started, i.e. whose pending record exists, is not started twice).

Plain module: no Dagster import (the detached dispatcher stays small); the spawn function is given.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SLOTS_DIR = "slots"
DISPATCHER_LOCK = "dispatcher.lock"
QUEUE_LOCK = "queue.lock"
# How often a dispatcher looks for a free slot while runs wait (a cheap non-blocking lock attempt each).
POLL_SECONDS = 0.5
# A detached dispatcher exits after the queue has stayed empty this long.
IDLE_EXIT_SECONDS = 3.0


class QueueFull(Exception):
    """More runs are waiting than the queue accepts; retry after `retry_after` seconds."""

    def __init__(self, waiting: int, limit: int, retry_after: int) -> None:
        super().__init__(
            f"the run queue is full ({waiting} jobs waiting, limit {limit}); retry in {retry_after} s"
        )
        self.waiting = waiting
        self.limit = limit
        self.retry_after = retry_after


@dataclass(frozen=True)
class QueuedRun:
    """A run waiting for a slot: what the dispatcher hands to the spawn function."""

    run_id: str
    key: str  # partition key
    args: list[str]  # the run worker's arguments
    record: dict[str, Any] = field(default_factory=dict)  # extra fields of the pending record
    enqueued_at: float = 0.0
    path: Path | None = None


@contextlib.contextmanager
def _flocked(path: Path, *, blocking: bool = True) -> Iterator[bool]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def worker_threads(slots: int, cpus: int | None = None) -> int:
    """CPU threads for each of `slots` concurrent run workers: the cores this process may use, shared.

    Torch (and numpy's BLAS) start one thread per core in every process; `slots` workers doing that on
    a CPU host oversubscribe the cores `slots` times and each runs several times slower (measured: the
    tiny-random models 9x slower with 2 threads per process on a loaded 2-core machine).

    >>> worker_threads(2, cpus=16)
    8
    >>> worker_threads(4, cpus=2)
    1
    """
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cpus // max(1, slots))


def worker_thread_env(environ: dict[str, str], slots: int) -> dict[str, str]:
    """The thread variables a slot-holding worker is started with: the operator's own
    ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` when set, else the cores shared by the slots."""
    shared = str(worker_threads(slots))
    return {name: environ.get(name) or shared for name in THREAD_VARS}


class RunQueue:
    """The queue and slots under `queue_dir` (``$MUSICGEN_DATA/run_queue``)."""

    def __init__(self, queue_dir: Path, *, limit: int, max_queued: int = 100) -> None:
        if limit < 1:
            raise ValueError(f"run slot limit {limit}: must be at least 1")
        self.dir = queue_dir
        self.limit = limit
        self.max_queued = max_queued

    # --- waiting runs ------------------------------------------------------------------------------
    def entries(self) -> list[QueuedRun]:
        """Waiting runs in arrival order."""
        if not self.dir.is_dir():
            return []
        out = []
        for path in sorted(self.dir.glob("*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                out.append(
                    QueuedRun(
                        run_id=data["run_id"],
                        key=data["key"],
                        args=list(data["args"]),
                        record=dict(data.get("record") or {}),
                        enqueued_at=float(data.get("enqueued_at") or 0.0),
                        path=path,
                    )
                )
            except (OSError, ValueError, KeyError, TypeError):
                continue  # half-written (never: written by rename) or foreign file
        return out

    def enqueue(self, run: QueuedRun, *, bounded: bool = True) -> int:
        """Add `run` at the end of the line; return its 1-based position.

        Raises `QueueFull` when `bounded` and `max_queued` runs already wait.
        """
        with _flocked(self.dir / QUEUE_LOCK):
            waiting = len(self.entries())
            if bounded and waiting >= self.max_queued:
                raise QueueFull(waiting, self.max_queued, self.retry_after(waiting))
            now = time.time()
            name = f"{time.time_ns():020d}-{run.run_id}.json"
            data = {"run_id": run.run_id, "key": run.key, "args": run.args, "record": run.record}
            tmp = self.dir / f".{uuid.uuid4().hex}.tmp"
            tmp.write_text(json.dumps({**data, "enqueued_at": now}), encoding="utf-8")
            tmp.replace(self.dir / name)
            return waiting + 1

    def retry_after(self, waiting: int) -> int:
        """Seconds a refused client should wait: about one run's share of the line ahead (30 s floor)."""
        return max(30, min(600, 30 * waiting // max(1, self.limit)))

    def position(self, run_id: str) -> int | None:
        for n, run in enumerate(self.entries(), start=1):
            if run.run_id == run_id:
                return n
        return None

    def remove(self, run_id: str) -> QueuedRun | None:
        """Take a waiting run out of the line (cancel); None when it is not waiting (any more)."""
        with _flocked(self.dir / QUEUE_LOCK):
            for run in self.entries():
                if run.run_id == run_id and run.path is not None:
                    run.path.unlink(missing_ok=True)
                    return run
        return None

    def claim(self, already_started: StartedFn, on_claim: ClaimFn) -> QueuedRun | None:
        """Take the oldest waiting run for the calling worker (which must hold a slot) to run itself.

        `on_claim(run)` (writing the run's pending record) is called under the queue lock before the
        run's file goes, so a dispatcher never starts it too and a crash between the two loses nothing.
        Returns None when nothing waits.
        """
        with _flocked(self.dir / QUEUE_LOCK):
            for run in self.entries():
                started = already_started(run)
                if not started:
                    on_claim(run)
                if run.path is not None:
                    run.path.unlink(missing_ok=True)
                if not started:
                    return run
                # else: the line still held a run some worker had started; dropped, look further
        return None

    # --- slots -------------------------------------------------------------------------------------
    def _slot_paths(self) -> list[Path]:
        return [self.dir / SLOTS_DIR / f"slot-{i}.lock" for i in range(self.limit)]

    def take_slot(self) -> int | None:
        """An open file descriptor holding a free slot's lock, or None when all are held."""
        for path in self._slot_paths():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return fd
        return None

    def busy_slots(self) -> int:
        """How many slots are held by live workers now."""
        busy = 0
        for path in self._slot_paths():
            with _flocked(path, blocking=False) as free:
                busy += 0 if free else 1
        return busy


# Starts a worker for a queued run, keeping the given slot descriptor open in it; returns its pid.
SpawnFn = Callable[[QueuedRun, int], int]
# True when a worker for this run was already started (its pending record exists).
StartedFn = Callable[[QueuedRun], bool]
# Records that the calling worker takes a run (its pending record), under the queue lock.
ClaimFn = Callable[[QueuedRun], None]


class Dispatcher:
    """Starts waiting runs in arrival order while slots are free (one dispatcher at a time)."""

    def __init__(self, queue: RunQueue, spawn: SpawnFn, already_started: StartedFn) -> None:
        self.queue = queue
        self.spawn = spawn
        self.already_started = already_started

    def dispatch_once(self) -> int:
        """Start as many waiting runs as there are free slots; return how many were started."""
        started = 0
        with _flocked(self.queue.dir / QUEUE_LOCK):
            for run in self.queue.entries():
                if self.already_started(run):
                    if run.path is not None:
                        run.path.unlink(missing_ok=True)
                    continue
                fd = self.queue.take_slot()
                if fd is None:
                    break
                try:
                    self.spawn(run, fd)
                finally:
                    os.close(fd)  # the worker holds the lock now (or nobody, if the spawn failed)
                if run.path is not None:
                    run.path.unlink(missing_ok=True)
                started += 1
        return started

    def serve(self, stop: Callable[[], bool], *, exit_when_idle: float | None = None) -> None:
        """Dispatch until `stop()` (or, with `exit_when_idle`, once the queue stayed empty that long).

        Returns at once when another dispatcher is working; the caller may try again later. A run
        enqueued while this one was deciding to exit is not stranded: it looks once more after
        letting go of the dispatcher lock.
        """
        while True:
            with _flocked(self.queue.dir / DISPATCHER_LOCK, blocking=False) as mine:
                if not mine:
                    return
                idle_since = time.monotonic()
                while not stop():
                    self.dispatch_once()
                    if self.queue.entries():
                        idle_since = time.monotonic()
                    elif exit_when_idle is not None and time.monotonic() - idle_since > exit_when_idle:
                        break
                    time.sleep(POLL_SECONDS)
            if stop() or not self.queue.entries():
                return


def dispatcher_running(queue_dir: Path) -> bool:
    with _flocked(queue_dir / DISPATCHER_LOCK, blocking=False) as free:
        return not free


def ensure_dispatcher(queue_dir: Path, env: dict[str, str] | None = None) -> int | None:
    """Start a detached dispatcher (``python -m musicgen_pipeline.launch dispatch``) unless one works.

    Returns its pid, or None when one was already working (the REST server's, or an earlier one).
    """
    if dispatcher_running(queue_dir):
        return None
    queue_dir.mkdir(parents=True, exist_ok=True)
    with (queue_dir / "dispatcher.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "musicgen_pipeline.launch", "dispatch"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    return proc.pid
