"""The run service: how a partition becomes a Dagster run, and how a run's progress is read.

Shared by the CLI (`render`), the REST layer and the tests. (Registering a request as a partition is
`instance.register_request`.)

- `materialize(instance, store, key)`: run the whole partition in this process (``render``), then
  refresh the unpartitioned catalog; the run is recorded in the instance and shows in the UI.
- `start_run_detached(instance, store, key)` / `start_job_detached(...)`: start a run in a detached
  child process (own session), so it survives the caller (a REST worker) exiting or restarting;
  return the run id at once. ``python -m musicgen_pipeline.launch JOB KEY RUN_ID [TAGS_JSON]`` is
  that child.
- `RunWatcher`: the one reader of run progress. It reads a run's step events incrementally (only
  those not seen yet), so polling a long render costs little; `run_progress` is a one-shot read.
  Dagster's run statuses map to ours in `RUN_STATUS`; `failure_message` / `root_cause` say why a
  run failed in one line.

Configuration reaches this module as values (a `PartitionStore`, a data folder); it reads none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from musicgen_pipeline.instance import dagster_home
from musicgen_pipeline.naming import CATALOG_JOB, RENDER_JOB, run_tags
from musicgen_pipeline.partition_store import PartitionStore

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
    raise_on_error: bool = False,
    log_level: str = "INFO",
) -> dg.ExecuteInProcessResult:
    """Materialize every asset of partition `key` in this process, then refresh the catalog.

    `log_level` is the console's (the instance's event log records everything regardless).
    """
    request = store.load_request(key)
    job = _definitions().resolve_job_def(RENDER_JOB)
    result = job.execute_in_process(
        run_config=_console(log_level),
        instance=instance,
        partition_key=key,
        run_id=run_id,
        tags=run_tags(request),
        raise_on_error=raise_on_error,
    )
    if result.success:
        refresh_catalog(instance, log_level=log_level)
    return result


def refresh_catalog(instance: dg.DagsterInstance, *, log_level: str = "WARNING") -> dg.ExecuteInProcessResult:
    job = _definitions().resolve_job_def(CATALOG_JOB)
    return job.execute_in_process(run_config=_console(log_level), instance=instance, raise_on_error=False)


def execute_job(
    instance: dg.DagsterInstance, job_name: str, key: str, run_id: str, tags: dict[str, str]
) -> bool:
    """Run job `job_name` for partition `key` as run `run_id` in this process; True on success."""
    job = _definitions().resolve_job_def(job_name)
    result = job.execute_in_process(
        instance=instance, partition_key=key, run_id=run_id, tags=tags, raise_on_error=False
    )
    return result.success


# --- detached runs -----------------------------------------------------------------------------------


def start_run_detached(instance: dg.DagsterInstance, store: PartitionStore, key: str) -> str:
    """Start the partition's render in a detached child process; return its run id immediately.

    The child runs in its own session, so it outlives the caller. Until the child has created the run in
    the instance, the watcher reports it as queued (or failed, when the child died before that).
    """
    request = store.load_request(key)  # fail here, not in the child, when the partition has no request
    run_id = str(uuid.uuid4())
    spawn_detached(store, key, run_id, [RENDER_JOB, key, run_id, json.dumps(run_tags(request))])
    return run_id


def start_job_detached(
    store: PartitionStore, job_name: str, key: str, run_id: str, tags: dict[str, str] | None = None
) -> str:
    """Start `job_name` for partition `key` as run `run_id` in a detached child; return `run_id`."""
    spawn_detached(store, key, run_id, [job_name, key, run_id, json.dumps(tags or {})], job=job_name)
    return run_id


def spawn_detached(store: PartitionStore, key: str, run_id: str, args: list[str], **record: Any) -> int:
    """Run ``python -m musicgen_pipeline.launch <args>`` for run `run_id` of partition `key` in its own
    session (it outlives the caller), logging to ``outputs/<key>/runs/<run_id>.log`` and leaving the
    pending record ``<run_id>.json`` (pid, start time, `record`) that the watcher reads until the run
    exists. A daemon thread reaps the child when it ends, so a long-lived caller (the REST server) keeps
    no zombies; it never blocks the caller. Returns the child's pid."""
    files = store.files(key)
    env = dict(os.environ, DAGSTER_HOME=str(dagster_home(store.outputs_dir.parent)))
    with files.run_log(run_id).open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "musicgen_pipeline.launch", *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
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
        elif kind == "STEP_FAILURE" or (kind == "RUN_FAILURE" and self.error is None):
            self.error = failure_message(event)


class RunWatcher:
    """Reads the progress of runs from the instance, incrementally; thread-safe.

    One watcher per long-lived reader (the REST layer keeps one; `render --wait` makes one); each run's
    step events are read once, by cursor, and forgotten when the run ends. A run that does not exist
    yet is read from the pending record its detached child left (queued while the child lives).
    """

    def __init__(self, instance: dg.DagsterInstance, store: PartitionStore) -> None:
        self.instance = instance
        self.store = store
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
        pending = self.store.pending_run(run_id)
        if pending is None:
            return None
        alive = _pid_alive(int(pending["pid"]))
        return RunProgress(
            run_id=run_id,
            status="queued" if alive else "failed",
            partition=pending.get("partition"),
            error=None
            if alive
            else "the run process exited before the run started (see its log under outputs/<partition>/runs/)",
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


def _main(argv: list[str]) -> int:
    """``python -m musicgen_pipeline.launch JOB PARTITION_KEY RUN_ID [TAGS_JSON]``: a detached child."""
    if len(argv) not in (3, 4):
        print(
            "usage: python -m musicgen_pipeline.launch JOB_NAME PARTITION_KEY RUN_ID [TAGS_JSON]",
            file=sys.stderr,
        )
        return 2
    from musicgen_pipeline.instance import get_instance
    from musicgen_pipeline.settings import get_settings

    job_name, key, run_id = argv[:3]
    tags = json.loads(argv[3]) if len(argv) == 4 else {}
    settings = get_settings()  # this child is an entry point
    instance = get_instance(settings.data_dir)
    if job_name == RENDER_JOB:
        store = PartitionStore(settings.outputs_dir)
        return 0 if materialize(instance, store, key, run_id=run_id).success else 1
    return 0 if execute_job(instance, job_name, key, run_id, tags) else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
