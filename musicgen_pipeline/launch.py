"""The run service: how a partition becomes a Dagster run, and how a run's progress is read.

Shared by the CLI (`render`), the REST layer and the tests. (Registering a request as a partition is
`instance.register_request`.)

- `materialize(instance, store, key)`: run the whole partition in this process (``render``), then
  refresh the unpartitioned catalog; the run is recorded in the instance and shows in the UI.
- `materialize_bulk(instance, store, keys, max_batch=)`: several partitions as one bulk
  (``render A.json B.json``): the bulk generation job over each chunk of them (`bulk_generate`, one
  run per contiguous range of one model, at most `max_batch`), then each partition's own render run.
- `start_run_detached(instance, store, key)` / `start_job_detached(...)`: queue a run for a detached
  worker process (own session, so it survives the caller, e.g. a REST worker, exiting or restarting)
  and return the run id at once. Detached runs go through `run_queue`: at most the instance's
  ``max_concurrent_runs`` workers exist, started in arrival order by one dispatcher (the REST
  server's thread, or a detached ``python -m musicgen_pipeline.launch dispatch`` started on demand).
  ``python -m musicgen_pipeline.launch JOB KEY RUN_ID [TAGS_JSON]`` is the worker. A worker that holds
  a run slot stays warm: after its run it takes the oldest waiting run itself (`RunQueue.claim`), up
  to RUN_WORKER_MAX_RUNS runs in all, reusing its imports, compiled kernels and loaded model.
- Every process that executes a run (a worker, or ``render`` in the foreground) tags the run with
  itself (`run_health.worker_tags`), installs the non-spinning, interruptible pool wait
  (`pool_wait`) and reaps dead runs while it works (`run_health.Reaper`), so a killed run is failed
  and its ``gpu`` slot freed within seconds wherever anything still runs. `cancel` stops a run,
  waiting or running.
- `RunWatcher`: the one reader of run progress. It reads a run's step events incrementally (only
  those not seen yet), so polling a long render costs little; `run_progress` is a one-shot read.
  Dagster's run statuses map to ours in `RUN_STATUS`; `failure_message` / `root_cause` say why a
  run failed in one line.

Configuration reaches this module as values (a `PartitionStore`, a data folder); it reads none.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from musicgen_pipeline import pool_wait, run_health
from musicgen_pipeline.errors import InputError
from musicgen_pipeline.instance import dagster_home
from musicgen_pipeline.naming import (
    BULK_JOB,
    BULK_KEYS_TAG,
    CATALOG_JOB,
    PARTITIONS_NAME,
    RENDER_JOB,
    run_tags,
)
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.run_queue import (
    Dispatcher,
    QueuedRun,
    QueueFull,
    RunQueue,
    ensure_dispatcher,
    worker_thread_env,
)

if TYPE_CHECKING:
    import dagster as dg


# --- running in this process -------------------------------------------------------------------------


def _definitions() -> dg.Definitions:
    from musicgen_pipeline.definitions import defs

    return defs


def _console(log_level: str) -> dict[str, Any]:
    return {"loggers": {"console": {"config": {"log_level": log_level.upper()}}}}


def materialize(
    instance: dg.DagsterInstance,
    store: PartitionStore,
    key: str,
    *,
    run_id: str | None = None,
    bulk_run: str | None = None,
    raise_on_error: bool = False,
    log_level: str = "INFO",
) -> dg.ExecuteInProcessResult:
    """Materialize every asset of partition `key` in this process, then refresh the catalog.

    The run carries `naming.run_tags` of the request (`bulk_run`: the id of the bulk run it follows).
    `log_level` is the console's (the instance's event log records everything regardless).
    """
    request = store.load_request(key)
    job = _definitions().resolve_job_def(RENDER_JOB)
    pool_wait.install()
    with run_health.Reaper(instance):
        result = job.execute_in_process(
            run_config=_console(log_level),
            instance=instance,
            partition_key=key,
            run_id=run_id,
            tags={**run_tags(request, bulk_run=bulk_run), **run_health.worker_tags()},
            raise_on_error=raise_on_error,
        )
    if result.success:
        refresh_catalog(instance, log_level=log_level)
    return result


def bulk_chunks_of(
    instance: dg.DagsterInstance, store: PartitionStore, keys: list[str], max_batch: int
) -> list[list[str]]:
    """`keys` (registered partitions) cut into bulk runs (`bulk_plan.bulk_chunks`: contiguous in the
    partitions' insertion order, one model, at most `max_batch`)."""
    from musicgen_pipeline.bulk_plan import bulk_chunks

    order = instance.get_dynamic_partitions(PARTITIONS_NAME)
    model_of = {key: store.load_request(key).model or "" for key in keys}
    return bulk_chunks(order, keys, model_of, max_batch)


def execute_bulk(
    instance: dg.DagsterInstance,
    keys: list[str],
    *,
    run_id: str | None = None,
    log_level: str = "INFO",
) -> dg.ExecuteInProcessResult:
    """Run the bulk generation job over `keys` (one chunk of `bulk_chunks_of`) in this process."""
    from musicgen_pipeline.bulk_plan import bulk_tags

    job = _definitions().resolve_job_def(BULK_JOB)
    pool_wait.install()
    with run_health.Reaper(instance):
        return job.execute_in_process(
            run_config=_console(log_level),
            instance=instance,
            run_id=run_id,
            tags={**bulk_tags(keys), **run_health.worker_tags()},
            raise_on_error=False,
        )


def bulk_generate(
    instance: dg.DagsterInstance,
    store: PartitionStore,
    keys: list[str],
    *,
    max_batch: int,
    log_level: str = "INFO",
) -> list[dg.ExecuteInProcessResult]:
    """Run the bulk generation job in this process over `keys` (registered partitions): one run per
    chunk of `bulk_chunks_of`."""
    chunks = bulk_chunks_of(instance, store, keys, max_batch)
    return [execute_bulk(instance, chunk, log_level=log_level) for chunk in chunks]


def materialize_bulk(
    instance: dg.DagsterInstance,
    store: PartitionStore,
    keys: list[str],
    *,
    max_batch: int,
    log_level: str = "INFO",
) -> dict[str, dg.ExecuteInProcessResult]:
    """Render `keys` as one bulk: their scenes generated together (one bulk run per chunk of
    `bulk_chunks_of`), then each partition's own render run (`materialize`, tagged with its bulk run),
    which finds its scenes made. One result per key; a request that failed in the bulk pass fails its
    own render only."""
    bulk_of: dict[str, str] = {}
    for chunk in bulk_chunks_of(instance, store, keys, max_batch):
        run_id = execute_bulk(instance, chunk, log_level=log_level).run_id
        bulk_of.update(dict.fromkeys(chunk, run_id))
    return {
        key: materialize(instance, store, key, bulk_run=bulk_of[key], log_level=log_level) for key in keys
    }


def refresh_catalog(instance: dg.DagsterInstance, *, log_level: str = "WARNING") -> dg.ExecuteInProcessResult:
    job = _definitions().resolve_job_def(CATALOG_JOB)
    return job.execute_in_process(run_config=_console(log_level), instance=instance, raise_on_error=False)


def execute_job(
    instance: dg.DagsterInstance, job_name: str, key: str, run_id: str, tags: dict[str, str]
) -> bool:
    """Run job `job_name` for partition `key` as run `run_id` in this process; True on success."""
    job = _definitions().resolve_job_def(job_name)
    pool_wait.install()
    with run_health.Reaper(instance):
        result = job.execute_in_process(
            instance=instance,
            partition_key=key,
            run_id=run_id,
            tags={**tags, **run_health.worker_tags()},
            raise_on_error=False,
        )
    return result.success


# --- detached runs -----------------------------------------------------------------------------------


RUN_QUEUE_DIR = "run_queue"
# Set in a worker's environment when it holds a run slot (the lock's file descriptor number).
SLOT_FD_ENV = "MUSICGEN_RUN_SLOT_FD"


def max_concurrent_runs(instance: dg.DagsterInstance) -> int:
    """The instance's run limit (``concurrency.runs.max_concurrent_runs`` in ``dagster.yaml``): the one
    number the daemon's run queue and this project's own run queue both obey (unlimited -> CPU count)."""
    try:
        limit = instance.get_concurrency_config().run_queue_config.max_concurrent_runs
    except Exception:  # a run coordinator without a queue
        limit = None
    return int(limit) if limit and limit > 0 else max(1, os.cpu_count() or 1)


def run_queue(instance: dg.DagsterInstance, store: PartitionStore, *, max_queued: int = 100) -> RunQueue:
    """The queue of detached runs for this data folder (``$MUSICGEN_DATA/run_queue``)."""
    return RunQueue(
        store.outputs_dir.parent / RUN_QUEUE_DIR, limit=max_concurrent_runs(instance), max_queued=max_queued
    )


@dataclass(frozen=True)
class QueuePolicy:
    """Which queue detached runs join, and how long it may grow (resolved from settings by entry points).

    `mode` ``auto``: the Dagster daemon's run queue while its daemon is live (`dagster_queue`), else
    this project's own (`run_queue`); ``dagster`` / ``local`` force one. `max_queued`: beyond this many
    waiting runs a submission is refused with `QueueFull` (REST); None: always wait (``render``).
    """

    mode: str = "auto"
    code_location: str = "musicgen_pipeline"
    max_queued: int | None = None

    def uses_daemon(self, instance: dg.DagsterInstance) -> bool:
        from musicgen_pipeline import dagster_queue

        if self.mode == "local":
            return False
        return self.mode == "dagster" or dagster_queue.daemon_queue_live(instance)


def start_run_detached(
    instance: dg.DagsterInstance,
    store: PartitionStore,
    key: str,
    *,
    queue: RunQueue | None = None,
    policy: QueuePolicy = QueuePolicy(),
) -> str:
    """Queue the partition's render for a detached worker; return its run id immediately.

    With `policy.max_queued` a full queue refuses with `run_queue.QueueFull` (REST); otherwise the run
    always waits its turn. Until the worker has created the run in the instance, the watcher reports
    it as queued (with its place in line), or failed when the worker died before that.
    """
    request = store.load_request(key)  # fail here, not in the worker, when the partition has no request
    run_id = str(uuid.uuid4())
    return start_job_detached(
        instance, store, RENDER_JOB, key, run_id, run_tags(request), queue=queue, policy=policy
    )


def start_job_detached(
    instance: dg.DagsterInstance,
    store: PartitionStore,
    job_name: str,
    key: str,
    run_id: str,
    tags: dict[str, str] | None = None,
    *,
    queue: RunQueue | None = None,
    policy: QueuePolicy = QueuePolicy(),
) -> str:
    """Queue `job_name` for partition `key` as run `run_id` (the daemon's queue or ours); return it."""
    from musicgen_pipeline import dagster_queue

    if policy.uses_daemon(instance):
        waiting = dagster_queue.queued_count(instance)
        if policy.max_queued is not None and waiting >= policy.max_queued:
            raise QueueFull(waiting, policy.max_queued, 60)
        return dagster_queue.submit(instance, job_name, key, run_id, tags or {}, policy.code_location)
    args = [job_name, key, run_id, json.dumps(tags or {})]
    record = {} if job_name == RENDER_JOB else {"job": job_name}
    bounded = policy.max_queued is not None
    _enqueue(instance, store, queue, QueuedRun(run_id, key, args, record), bounded=bounded)
    return run_id


@dataclass(frozen=True)
class DetachedBulk:
    """A bulk run started detached (`start_bulk_detached`) and the render runs that follow it."""

    run_id: str  # the bulk_generation run over `keys`
    keys: list[str]
    renders: dict[str, str]  # partition key -> its render run's id; {} when the daemon's sensors start them

    @property
    def by_sensor(self) -> bool:
        return not self.renders


def start_bulk_detached(
    instance: dg.DagsterInstance,
    store: PartitionStore,
    keys: list[str],
    *,
    max_batch: int,
    queue: RunQueue | None = None,
    policy: QueuePolicy = QueuePolicy(),
) -> list[DetachedBulk]:
    """Start `keys` (registered partitions) as bulk runs (one per chunk of `bulk_chunks_of`) for
    detached workers, each partition's own render run following its bulk run; return at once.

    With the Dagster daemon's run queue (`policy`): the bulk runs join that queue and the sensors
    ``render_after_bulk`` / ``render_after_failed_bulk`` start the render runs when a bulk run ends
    (their ids are known only then: tag ``musicgen/bulk_run``). Otherwise each bulk run waits in this
    project's run queue like any detached run, and its worker runs the bulk job and then, in the same
    process and slot, each partition's render run under the id chosen here (also after a failed bulk run,
    as the sensors do): no daemon needed, and no render starts before its scenes are generated. Until a
    render run exists its pending record says it waits for its bulk run (`RunWatcher`)."""
    from musicgen_pipeline import dagster_queue
    from musicgen_pipeline.bulk_plan import bulk_tags

    daemon = policy.uses_daemon(instance)
    started = []
    for chunk in bulk_chunks_of(instance, store, keys, max_batch):
        run_id = str(uuid.uuid4())
        if daemon:
            dagster_queue.submit(instance, BULK_JOB, None, run_id, bulk_tags(chunk), policy.code_location)
            started.append(DetachedBulk(run_id, chunk, {}))
            continue
        renders = {key: str(uuid.uuid4()) for key in chunk}
        for key, render_id in renders.items():  # known to the watcher before the bulk's worker starts
            store.write_pending_run(key, render_id, {"run_id": render_id, "partition": key, AFTER: run_id})
        args = [BULK_JOB, chunk[0], run_id, json.dumps(bulk_tags(chunk)), json.dumps(renders)]
        run = QueuedRun(run_id, chunk[0], args, {"job": BULK_JOB, "keys": chunk})
        _enqueue(instance, store, queue, run, bounded=policy.max_queued is not None)
        started.append(DetachedBulk(run_id, chunk, renders))
    return started


# In the pending record of a render run that a bulk worker runs after its bulk run: that run's id.
AFTER = "after"


def _enqueue(
    instance: dg.DagsterInstance,
    store: PartitionStore,
    queue: RunQueue | None,
    run: QueuedRun,
    *,
    bounded: bool,
) -> None:
    queue = queue or run_queue(instance, store)
    queue.enqueue(run, bounded=bounded)
    dispatcher(store, queue).dispatch_once()  # a free slot starts it now (safe beside a dispatcher)
    if not queue.entries():
        return
    # A dispatcher must be working for what still waits: the REST server's thread, or one started here.
    ensure_dispatcher(
        queue.dir, env=dict(os.environ, DAGSTER_HOME=str(dagster_home(store.outputs_dir.parent)))
    )


def dispatcher(store: PartitionStore, queue: RunQueue) -> Dispatcher:
    """The dispatcher of `queue`: starts each waiting run as a detached worker holding a run slot."""

    def spawn(run: QueuedRun, slot_fd: int) -> int:
        threads = worker_thread_env(dict(os.environ), queue.limit)
        return spawn_detached(
            store, run.key, run.run_id, run.args, slot_fd=slot_fd, extra_env=threads, **run.record
        )

    return Dispatcher(queue, spawn, lambda run: store.pending_run(run.run_id) is not None)


def cancel(
    instance: dg.DagsterInstance, store: PartitionStore, queue: RunQueue, run_id: str, reason: str
) -> bool:
    """Stop a run: a waiting one leaves the queue (recorded as canceled); a running one is terminated
    (`run_health.terminate`). False when there is nothing to stop (unknown or already finished)."""
    waiting = queue.remove(run_id)
    if waiting is not None:
        store.write_pending_run(
            waiting.key,
            run_id,
            {"run_id": run_id, "partition": waiting.key, "canceled": True, "error": f"canceled: {reason}"},
        )
        return True
    if instance.get_run_by_id(run_id) is not None:
        return run_health.terminate(instance, run_id, reason)
    pending = store.pending_run(run_id)
    if pending and pending.get(AFTER):  # waits for its bulk run, in that run's worker: it is skipped
        store.write_pending_run(
            pending["partition"], run_id, {**pending, "canceled": True, "error": f"canceled: {reason}"}
        )
        return True
    if pending and pending.get("pid") and _pid_alive(int(pending["pid"])):
        os.kill(int(pending["pid"]), signal.SIGTERM)  # its worker has not created the run yet
        store.write_pending_run(
            pending["partition"], run_id, {**pending, "canceled": True, "error": f"canceled: {reason}"}
        )
        return True
    return False


def spawn_detached(
    store: PartitionStore,
    key: str,
    run_id: str,
    args: list[str],
    *,
    slot_fd: int | None = None,
    extra_env: dict[str, str] | None = None,
    **record: Any,
) -> int:
    """Run ``python -m musicgen_pipeline.launch <args>`` for run `run_id` of partition `key` in its own
    session (it outlives the caller), logging to ``outputs/<key>/runs/<run_id>.log`` and leaving the
    pending record ``<run_id>.json`` (pid, start time, `record`) that the watcher reads until the run
    exists. `slot_fd` (a run slot's lock, see `run_queue`) stays open in the worker for its lifetime;
    `extra_env` is added to the worker's environment (the dispatcher's CPU thread share).
    A daemon thread reaps the child when it ends, so a long-lived caller (the REST server) keeps no
    zombies; it never blocks the caller. Returns the child's pid."""
    files = store.files(key)
    env = dict(os.environ, DAGSTER_HOME=str(dagster_home(store.outputs_dir.parent)))
    env.pop(SLOT_FD_ENV, None)
    env.update(extra_env or {})
    if slot_fd is not None:
        env[SLOT_FD_ENV] = str(slot_fd)  # the worker holds a slot: it may run waiting runs after its own
    with files.run_log(run_id).open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "musicgen_pipeline.launch", *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
            pass_fds=(slot_fd,) if slot_fd is not None else (),
        )
    threading.Thread(target=proc.wait, name=f"reap-{run_id[:8]}", daemon=True).start()
    pending = {"run_id": run_id, "partition": key, "pid": proc.pid, "started": time.time(), **record}
    store.write_pending_run(key, run_id, pending)
    return proc.pid


# --- progress ----------------------------------------------------------------------------------------

# Dagster run status -> our run status (also the REST layer's job status source).
RUN_STATUS = {
    "QUEUED": "queued",
    "NOT_STARTED": "queued",
    "STARTING": "running",
    "MANAGED": "running",
    "STARTED": "running",
    "SUCCESS": "succeeded",
    "FAILURE": "failed",
    "CANCELING": "running",
    "CANCELED": "canceled",
}
FINAL_STATUSES = ("succeeded", "failed", "canceled")


@dataclass
class RunProgress:
    run_id: str
    status: str  # queued | running | succeeded | failed | canceled
    partition: str | None = None
    steps_total: int = 0
    steps_done: int = 0
    current_step: str | None = None
    retries: int = 0
    error: str | None = None
    soundtrack_path: str | None = None
    dagster_status: str | None = None
    steps: list[str] = field(default_factory=list)  # steps started so far, in order
    queue_position: int | None = None  # 1-based place in the run queue while waiting for a run slot

    @property
    def fraction(self) -> float:
        if self.status == "succeeded":
            return 1.0
        return self.steps_done / self.steps_total if self.steps_total else 0.0

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


def root_cause(error: Any) -> str:
    """The user exception's message under Dagster's wrappers, on one line."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return " ".join(str(error.message).split())


def failure_message(event: Any) -> str:
    """The root cause of a failed step or run, one line: `<step>: <Error>: <message>`."""
    err = getattr(event.event_specific_data, "error", None)
    if err is None:
        return (event.message or "run failed").strip()
    while getattr(err, "cause", None) is not None:
        err = err.cause
    message = (err.message or "").strip().splitlines()
    text = message[0] if message else "run failed"
    head, sep, rest = text.partition(": ")
    if sep and "." in head and " " not in head:  # "package.module.ErrorClass: ..." -> "ErrorClass: ..."
        text = f"{head.rsplit('.', 1)[-1]}: {rest}"
    return f"{event.step_key}: {text}" if event.step_key else text


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _step_event_types() -> set[Any]:
    import dagster as dg

    kinds = dg.DagsterEventType
    return {kinds.STEP_START, kinds.STEP_SUCCESS, kinds.STEP_SKIPPED, kinds.STEP_FAILURE, kinds.STEP_UP_FOR_RETRY,
            kinds.RUN_FAILURE}  # fmt: skip


@dataclass
class _StepState:
    """What the step events of one run said so far (read incrementally by cursor)."""

    cursor: str | None = None
    started: list[str] = field(default_factory=list)
    done: set[str] = field(default_factory=set)
    retries: int = 0
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, event: Any) -> None:
        if event is None:
            return
        kind = event.event_type_value
        if kind == "STEP_START" and event.step_key not in self.started:
            self.started.append(event.step_key)
        elif kind in ("STEP_SUCCESS", "STEP_SKIPPED"):
            self.done.add(event.step_key)
        elif kind == "STEP_UP_FOR_RETRY":
            self.retries += 1
        elif kind == "STEP_FAILURE" or (kind in ("RUN_FAILURE", "PIPELINE_FAILURE") and self.error is None):
            self.error = failure_message(event)


class RunWatcher:
    """Reads the progress of runs from the instance, incrementally; thread-safe.

    One watcher per long-lived reader (the REST layer keeps one; `render --wait` makes one); each run's
    step events are read once, by cursor, and forgotten when the run ends. A run that does not exist
    yet is read from the pending record its detached child left (queued while the child lives).
    """

    def __init__(
        self, instance: dg.DagsterInstance, store: PartitionStore, queue: RunQueue | None = None
    ) -> None:
        self.instance = instance
        self.store = store
        self.queue = queue or run_queue(instance, store)
        self._lock = threading.Lock()
        self._states: dict[str, _StepState] = {}

    def progress(self, run_id: str) -> RunProgress | None:
        """The run's progress now; None for an unknown run id."""
        run = self.instance.get_run_by_id(run_id)
        if run is None:
            return self._pending(run_id)
        with self._lock:
            state = self._states.setdefault(run_id, _StepState())
        with state.lock:
            while True:
                connection = self.instance.get_records_for_run(
                    run_id, cursor=state.cursor, of_type=_step_event_types(), limit=500
                )
                for entry in connection.records:
                    state.add(entry.event_log_entry.dagster_event)
                state.cursor = connection.cursor
                if not connection.has_more:
                    break
            plan = run.step_keys_to_execute
            status = run.status.value
            position = None
            if status == "QUEUED":  # waiting in the Dagster daemon's run queue
                from musicgen_pipeline import dagster_queue

                position = dagster_queue.queued_position(self.instance, run_id)
            progress = RunProgress(
                run_id=run_id,
                status=RUN_STATUS.get(status, "running"),
                partition=run.tags.get("dagster/partition"),
                steps_total=len(plan) if plan else max(len(state.started), len(state.done)),
                steps_done=len(state.done),
                current_step=next((s for s in reversed(state.started) if s not in state.done), None),
                retries=state.retries,
                error=state.error,
                dagster_status=status,
                steps=list(state.started),
                queue_position=position,
            )
        if progress.final:
            with self._lock:
                self._states.pop(run_id, None)
            if progress.status != "succeeded" and progress.error is None:
                progress.error = f"the run ended with status {status}"
            if progress.status == "succeeded" and progress.partition:
                path = self.store.summary(progress.partition).get("soundtrack_path")
                progress.soundtrack_path = path if isinstance(path, str) else None
        return progress

    def _pending(self, run_id: str) -> RunProgress | None:
        position = self.queue.position(run_id)
        pending = self.store.pending_run(run_id)
        if pending is None and position is None:
            position = self.queue.position(run_id)  # dequeued between the two reads: read once more
            pending = self.store.pending_run(run_id)
        if pending is None:
            if position is None:
                return None
            return RunProgress(run_id=run_id, status="queued", queue_position=position)
        if pending.get("canceled"):
            return RunProgress(
                run_id=run_id,
                status="canceled",
                partition=pending.get("partition"),
                error=pending.get("error"),
            )
        if "pid" not in pending:
            return self._after_bulk(run_id, pending)
        alive = _pid_alive(int(pending["pid"]))
        if not alive and self.instance.get_run_by_id(run_id) is not None:
            return self.progress(run_id)  # the worker created the run and ended since the first read
        return RunProgress(
            run_id=run_id,
            status="queued" if alive else "failed",
            partition=pending.get("partition"),
            error=None
            if alive
            else "the run process exited before the run started (see its log under outputs/<partition>/runs/)",
        )

    def _after_bulk(self, run_id: str, pending: dict[str, Any]) -> RunProgress:
        """A render run that waits for the bulk run it follows, whose worker has not claimed it yet."""
        bulk_id = str(pending.get(AFTER))
        bulk = self.progress(bulk_id)
        partition = pending.get("partition")
        if bulk is not None and not bulk.final:
            return RunProgress(run_id, "queued", partition=partition, queue_position=bulk.queue_position)
        again = self.store.pending_run(run_id)
        if again is not None and ("pid" in again or again.get("canceled")):
            return self.progress(run_id)  # claimed (or canceled) since the first read
        state = bulk.status if bulk is not None else "gone"
        if state == "canceled":
            return RunProgress(
                run_id, "canceled", partition=partition, error=f"canceled: bulk run {bulk_id} was"
            )
        return RunProgress(
            run_id,
            "failed",
            partition=partition,
            error=f"bulk run {bulk_id} ended ({state}) before this run started",
        )

    def wait(self, run_id: str, *, poll_seconds: float = 1.0, on_change: Any = None) -> RunProgress | None:
        """Poll until the run ends (or vanishes: None); `on_change(progress)` sees each new state."""
        last = None
        while True:
            progress = self.progress(run_id)
            if progress is None:
                return None
            state = (progress.status, progress.steps_done, progress.steps_total, progress.current_step)
            if on_change is not None and state != last:
                on_change(progress)
            last = state
            if progress.final:
                return progress
            time.sleep(poll_seconds)


def run_progress(instance: dg.DagsterInstance, store: PartitionStore, run_id: str) -> RunProgress | None:
    """One read of a run's progress (a `RunWatcher` that lives for one call)."""
    return RunWatcher(instance, store).progress(run_id)


def _dispatch_main() -> int:
    """``python -m musicgen_pipeline.launch dispatch``: start queued runs until the queue is empty."""
    from musicgen_pipeline.instance import get_instance
    from musicgen_pipeline.run_queue import IDLE_EXIT_SECONDS
    from musicgen_pipeline.settings import get_settings

    settings = get_settings()  # this process is an entry point
    instance = get_instance(settings.data_dir)
    store = PartitionStore(settings.outputs_dir)
    queue = run_queue(instance, store)
    with run_health.Reaper(instance):
        dispatcher(store, queue).serve(lambda: False, exit_when_idle=IDLE_EXIT_SECONDS)
    return 0


def _main(argv: list[str]) -> int:
    """``python -m musicgen_pipeline.launch JOB PARTITION_KEY RUN_ID [TAGS_JSON]``: a detached worker
    (it inherits its run slot's lock from the dispatcher and holds it until it exits)."""
    # A parent started from a background shell may have left SIGINT/SIGTERM ignored; a worker obeys them.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if argv == ["dispatch"]:
        return _dispatch_main()
    if len(argv) not in (3, 4, 5):
        print(
            "usage: python -m musicgen_pipeline.launch JOB_NAME PARTITION_KEY RUN_ID [TAGS_JSON [RENDERS_JSON]]\n"
            "       python -m musicgen_pipeline.launch dispatch",
            file=sys.stderr,
        )
        return 2
    from musicgen_pipeline.instance import get_instance
    from musicgen_pipeline.settings import get_settings

    settings = get_settings()  # this child is an entry point
    instance = get_instance(settings.data_dir)
    store = PartitionStore(settings.outputs_dir)
    ok = _run_worker_args(instance, store, argv)
    if os.environ.get(SLOT_FD_ENV) is not None:  # it holds a run slot: it may run what waits
        ok = _run_waiting(instance, store, settings.run_worker_max_runs - 1, settings.musicgen_model) and ok
    return 0 if ok else 1


def _run_worker_args(instance: dg.DagsterInstance, store: PartitionStore, argv: list[str]) -> bool:
    """Run what a worker's arguments (``JOB PARTITION_KEY RUN_ID [TAGS_JSON [RENDERS_JSON]]``) name; True
    on success. A bulk run's (`start_bulk_detached`) name its partitions in TAGS_JSON and the render runs
    that follow it in RENDERS_JSON."""
    job_name, key, run_id = argv[:3]
    tags = json.loads(argv[3]) if len(argv) >= 4 else {}
    if job_name == BULK_JOB:
        return _run_bulk_and_renders(
            instance, store, run_id, tags, json.loads(argv[4]) if len(argv) == 5 else {}
        )
    if job_name == RENDER_JOB:
        return materialize(instance, store, key, run_id=run_id).success
    return execute_job(instance, job_name, key, run_id, tags)


def _run_bulk_and_renders(
    instance: dg.DagsterInstance,
    store: PartitionStore,
    run_id: str,
    tags: dict[str, str],
    renders: dict[str, str],
) -> bool:
    """A detached bulk: bulk run `run_id`, then each partition's render run (`renders`: key -> run id)
    in this process, in order, whatever the bulk run's outcome (what it did not generate, a render
    generates alone and fails alone); a render run canceled meanwhile is skipped. True when all succeed."""
    from musicgen_pipeline.bulk_plan import parse_keys

    for key, render_id in renders.items():  # this process runs them: the watcher now follows its pid
        pending = store.pending_run(render_id) or {}
        if not pending.get("canceled"):
            record = {"run_id": render_id, "partition": key, "pid": os.getpid(), "started": time.time()}
            store.write_pending_run(key, render_id, {**record, AFTER: run_id})
    ok = execute_bulk(instance, parse_keys(tags.get(BULK_KEYS_TAG)), run_id=run_id).success
    for key, render_id in renders.items():
        if (store.pending_run(render_id) or {}).get("canceled"):
            continue
        _log_to(store.files(key).run_log(render_id))
        ok = materialize(instance, store, key, run_id=render_id, bulk_run=run_id).success and ok
    return ok


def _run_waiting(
    instance: dg.DagsterInstance, store: PartitionStore, max_runs: int, default_model: str
) -> bool:
    """A warm worker: after its own run, run up to `max_runs` waiting runs in this process, oldest first.

    Each starts as if a fresh worker had been spawned for it (pending record naming this process, its own
    log file under ``outputs/<key>/runs/``), but without a new interpreter: imports, compiled kernels and
    the loaded model are reused (one MusicGen at a time is kept: `release_musicgen`). The worker holds
    its run slot throughout, so the instance's run limit still holds; it exits when nothing waits.
    """
    from musicgen_pipeline.models.loaders import release_musicgen

    queue = run_queue(instance, store)
    ok = True

    def claimed(run: QueuedRun) -> None:
        record = {"run_id": run.run_id, "partition": run.key, "pid": os.getpid(), "started": time.time()}
        store.write_pending_run(run.key, run.run_id, {**record, "warm": True, **run.record})

    for _ in range(max_runs):
        run = queue.claim(lambda r: store.pending_run(r.run_id) is not None, claimed)
        if run is None:
            break
        _log_to(store.files(run.key).run_log(run.run_id))
        if run.args[0] == RENDER_JOB:
            model = default_model
            with contextlib.suppress(InputError, OSError, ValueError):  # unreadable: its run says why
                model = store.load_request(run.key).model or default_model
            release_musicgen(keep=model)
        ok = _run_worker_args(instance, store, run.args) and ok
    return ok


def _log_to(path: Path) -> None:
    """Point this process's stdout and stderr (file descriptors 1 and 2) at `path`, appending."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
