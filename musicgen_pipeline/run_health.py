"""Is the process executing a run alive? Dead runs are failed and their pool slots freed.

Dagster's default run launcher has no worker health check, so a run whose process was killed
(``kill -9``, OOM killer, power cut of a container) stays STARTED forever, and when it held the
``gpu`` slot every later GPU step waits for ever. This module gives every topology the same answer:

- **Who executes a run.** A worker started by this project tags its run at creation with
  `worker_tags()` (host, pid, process start time). Any other worker (``dagster dev``, the daemon's
  launcher, ``execute_in_process`` elsewhere) is found through the engine events Dagster itself
  writes with the executing pid ("Started process for run (pid: N)", "Executing steps in process
  (pid: N)"); those are trusted as local only when the instance launches runs on this host
  (`DefaultRunLauncher` or a subclass).
- **Alive** means: that pid exists on this host, is not a zombie, and is the same process (its
  start time matches, so a recycled pid is not mistaken for the worker). A worker on another host
  is *unknown*, never dead: its own launcher (Docker, Kubernetes) checks it.
- `reap(instance)`: each in-flight run (STARTING, STARTED, CANCELING, and NOT_STARTED runs our workers
  created and died before starting) whose worker is dead is marked
  failed (canceled when termination had been requested) and its concurrency slots are freed at
  once; a CANCELING run whose worker still lives after `CANCEL_GRACE_SECONDS` is killed and then
  ended the same way; slots still held by finished (or deleted) runs whose worker is gone are freed.
  Idempotent and cheap (one run query; a few event reads per in-flight run): the REST server calls
  it periodically, every run worker calls it while it runs, the run launcher's health check uses
  the same test for the daemon's run monitoring.
- `terminate(instance, run_id)`: the one way to stop a run (REST, UI through the run launcher):
  mark it CANCELING and send SIGTERM to its local worker, which ends the run at once, even while
  it waits for a pool slot (see `pool_wait`); escalation to SIGKILL happens in `reap`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg

WORKER_HOST_TAG = "musicgen/worker_host"
WORKER_PID_TAG = "musicgen/worker_pid"
WORKER_STARTED_TAG = "musicgen/worker_started"
# A terminated run whose worker has not ended after this long is killed (SIGKILL) by `reap`.
CANCEL_GRACE_SECONDS = 30.0
# Process start times are known to about a clock tick; boot time to a second.
_START_TOLERANCE_SECONDS = 2.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Worker:
    """The process executing a run, as recorded when the run started."""

    pid: int
    host: str | None  # None: recorded by Dagster without a host (trusted only for a local launcher)
    started: float | None = None  # the process's start time (epoch seconds) when recorded
    seen_at: float | None = None  # when Dagster recorded the pid (the process started before it)

    def describe(self) -> str:
        return f"pid {self.pid}" + (f" on {self.host}" if self.host else "")


# --- this process --------------------------------------------------------------------------------


def _boot_time() -> float | None:
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            for line in stat:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name (index 0 = state); None if gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_start_time(pid: int) -> float | None:
    """Start time of process `pid` in epoch seconds (Linux ``/proc``); None when unknown."""
    fields = _proc_stat(pid)
    boot = _boot_time()
    if fields is None or boot is None:
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def worker_tags() -> dict[str, str]:
    """Run tags naming this process as the run's worker (set when the run is created)."""
    pid = os.getpid()
    started = process_start_time(pid)
    tags = {WORKER_HOST_TAG: socket.gethostname(), WORKER_PID_TAG: str(pid)}
    if started is not None:
        tags[WORKER_STARTED_TAG] = f"{started:.2f}"
    return tags


# --- any run's worker ----------------------------------------------------------------------------


def _launches_locally(instance: dg.DagsterInstance) -> bool:
    from dagster._core.launcher.default_run_launcher import DefaultRunLauncher

    try:
        return isinstance(instance.run_launcher, DefaultRunLauncher)
    except Exception:  # a launcher that cannot be built here (missing package) is not local
        return False


def worker_of(instance: dg.DagsterInstance, run: dg.DagsterRun) -> Worker | None:
    """The worker recorded for `run`; None when none was recorded (not started, or not local)."""
    tags = run.tags
    if WORKER_PID_TAG in tags:
        try:
            started = tags.get(WORKER_STARTED_TAG)
            return Worker(
                pid=int(tags[WORKER_PID_TAG]),
                host=tags.get(WORKER_HOST_TAG),
                started=float(started) if started else None,
            )
        except ValueError:
            return None
    if not _launches_locally(instance):
        return None
    import dagster as dg

    records = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, ascending=True, limit=50
    ).records
    found: Worker | None = None
    for record in records:
        event = record.event_log_entry.dagster_event
        metadata = getattr(event.event_specific_data, "metadata", None) if event else None
        pid = metadata.get("pid") if metadata else None
        if pid is not None:
            try:
                found = Worker(pid=int(pid.value), host=None, seen_at=record.timestamp)
            except (TypeError, ValueError):
                continue
    return found


def is_alive(worker: Worker) -> bool | None:
    """True/False for a worker on this host; None (unknown) for one on another host."""
    if worker.host is not None and worker.host != socket.gethostname():
        return None
    if not os.path.isdir("/proc"):
        try:
            os.kill(worker.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    fields = _proc_stat(worker.pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    started = process_start_time(worker.pid)
    if started is not None:
        if worker.started is not None and abs(started - worker.started) > _START_TOLERANCE_SECONDS:
            return False  # the pid now belongs to another process
        if worker.seen_at is not None and started > worker.seen_at + _START_TOLERANCE_SECONDS:
            return False
    return True


# --- ending runs ---------------------------------------------------------------------------------


def free_slots(instance: dg.DagsterInstance, run_id: str) -> None:
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        storage.free_concurrency_slots_for_run(run_id)


def end_dead_run(instance: dg.DagsterInstance, run_id: str, reason: str) -> bool:
    """Mark the run failed (canceled if termination was requested) and free its slots.

    Returns True when this call ended it (False when it had already finished).
    """
    from dagster import DagsterRunStatus
    from dagster._core.events import JobFailureData, RunFailureReason

    run = instance.get_run_by_id(run_id)
    ended = False
    if run is not None and not run.is_finished:
        if run.status == DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, reason)
        else:
            instance.report_run_failed(
                run,
                reason,
                JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION),
            )
        ended = True
        log.warning("run %s: %s", run_id, reason)
    free_slots(instance, run_id)
    return ended


def _canceling_since(instance: dg.DagsterInstance, run_id: str) -> float | None:
    import dagster as dg

    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.RUN_CANCELING, ascending=False, limit=1
    ).records
    return records[0].timestamp if records else None


def reap(instance: dg.DagsterInstance, *, cancel_grace_seconds: float = CANCEL_GRACE_SECONDS) -> list[str]:
    """End every in-flight run whose worker is dead (see the module docstring); return their ids."""
    from dagster import DagsterRunStatus, RunsFilter

    in_flight = (
        DagsterRunStatus.NOT_STARTED,  # created in-process by a worker killed before RUN_START (only
        # runs with worker tags have a worker here: runs waiting for a launcher have none)
        DagsterRunStatus.STARTING,
        DagsterRunStatus.STARTED,
        DagsterRunStatus.CANCELING,
    )
    ended: list[str] = []
    for run in instance.get_runs(filters=RunsFilter(statuses=list(in_flight))):
        worker = worker_of(instance, run)
        if worker is None:
            continue
        alive = is_alive(worker)
        if alive is False:
            why = f"its worker process ({worker.describe()}) died before the run finished"
            if end_dead_run(instance, run.run_id, f"run ended: {why}"):
                ended.append(run.run_id)
        elif alive and run.status == DagsterRunStatus.CANCELING:
            since = _canceling_since(instance, run.run_id)
            if since is not None and time.time() - since > cancel_grace_seconds:
                _kill(worker.pid, signal.SIGKILL)
                if end_dead_run(
                    instance,
                    run.run_id,
                    f"run canceled: its worker ({worker.describe()}) did not stop within "
                    f"{cancel_grace_seconds:g} s of the termination request and was killed",
                ):
                    ended.append(run.run_id)
    _free_slots_of_ended_runs(instance)
    return ended


def _free_slots_of_ended_runs(instance: dg.DagsterInstance) -> None:
    """Slots (held or pending) of runs that finished or no longer exist, once no worker runs them.

    The daemon does this after ``free_slots_after_run_end_seconds``; without a daemon (``render``,
    standalone ``serve``) nothing else would.
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    for run_id in storage.get_concurrency_run_ids():
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            continue
        worker = worker_of(instance, run) if run is not None else None
        if worker is not None and is_alive(worker) is not False:
            continue  # its worker is still winding down (or unknown): it frees its own slots
        storage.free_concurrency_slots_for_run(run_id)


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _wait_for_run_start(
    instance: dg.DagsterInstance, run: dg.DagsterRun | None, *, timeout: float
) -> dg.DagsterRun | None:
    """The run once its live worker has recorded RUN_START (or finished), waiting at most `timeout` s.

    A worker that exists but has not yet written RUN_START would overwrite a CANCELING written now with
    STARTED, and Dagster then reads the SIGTERM as an unexpected interruption (FAILURE, not CANCELED).
    """
    from dagster import DagsterRunStatus

    waiting = (DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING)
    deadline = time.monotonic() + timeout
    while run is not None and run.status in waiting and time.monotonic() < deadline:
        worker = worker_of(instance, run)
        if worker is None or not is_alive(worker):
            break
        time.sleep(0.2)
        run = instance.get_run_by_id(run.run_id)
    return run


def terminate(
    instance: dg.DagsterInstance,
    run_id: str,
    reason: str = "termination requested",
    *,
    start_timeout: float = 15.0,
) -> bool:
    """Request the end of a run: CANCELING, then SIGTERM to its local worker.

    Returns False when the run is unknown or already finished. A worker that is already dead is
    ended at once; one on another host is left to its launcher (``instance.run_launcher.terminate``).
    """
    from dagster import DagsterRunStatus

    run = instance.get_run_by_id(run_id)
    if run is None or run.is_finished:
        return False
    if run.status == DagsterRunStatus.QUEUED:  # still in the daemon's queue: no worker yet
        return instance.run_coordinator.cancel_run(run_id)
    run = _wait_for_run_start(instance, run, timeout=start_timeout)
    if run is None or run.is_finished:
        return False
    if run.status != DagsterRunStatus.CANCELING:
        instance.report_run_canceling(run, f"Sending run termination request: {reason}.")
    worker = worker_of(instance, run)
    if worker is None:
        if run.status in (DagsterRunStatus.NOT_STARTED, DagsterRunStatus.QUEUED):
            end_dead_run(instance, run_id, f"run canceled before it started: {reason}")
        return True
    alive = is_alive(worker)
    if alive:
        _kill(worker.pid, signal.SIGTERM)
    elif alive is False:
        end_dead_run(instance, run_id, f"run canceled ({reason}); its worker had already died")
    return True


class Reaper:
    """`reap(instance)` every `interval` seconds in a daemon thread, for as long as a process works.

    The REST server runs one for its lifetime and every run worker one while its run executes, so a
    dead run is ended within about `interval` seconds wherever something is still running (a run
    waiting for the dead run's slot is itself such a process). Errors are logged, never raised.
    """

    def __init__(self, instance: dg.DagsterInstance, interval: float = 10.0) -> None:
        self.instance = instance
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="run-reaper", daemon=True)

    def __enter__(self) -> Reaper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                reap(self.instance)
            except Exception:  # storage hiccup: try again next round
                log.exception("reaping dead runs failed")
