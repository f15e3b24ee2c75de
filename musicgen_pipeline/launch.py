"""How a request becomes a partition and a run; shared by the CLI, the sensors, the schedule and REST.

- `get_instance()`: the configured Dagster instance (``DAGSTER_HOME``; when unset,
  ``$MUSICGEN_DATA/dagster_home``, created with this project's `dagster.yaml`).
- `register_request(instance, request)`: store ``outputs/<key>/request.json`` and add the dynamic
  partition ``<key>`` (idempotent: same content => same key, nothing duplicated).
- `materialize(instance, key)`: run the whole partition in this process (``render``), then refresh the
  unpartitioned catalog; the run is recorded in the instance and shows in the UI.
- `start_run_detached(instance, key)`: start that run in a detached child process (own session), so it
  survives the caller (a REST worker) exiting or restarting; returns the run id at once.
- `run_progress(instance, run_id)`: status, steps done/total, current step and failure of a run,
  read from the instance (any process can ask).
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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from musicgen_pipeline.assets.partitions import PARTITIONS_NAME
from musicgen_pipeline.errors import InputError
from musicgen_pipeline.request import SoundtrackRequest, check_partition_key, parse_request
from musicgen_pipeline.settings import get_settings

if TYPE_CHECKING:
    import dagster as dg

RENDER_JOB = "render_soundtrack"
CATALOG_JOB = "refresh_catalog"
REQUEST_FILE = "request.json"
RUN_KEY_TAG = "musicgen/request_hash"

# The instance configuration this project ships (the repo's dagster.yaml holds the same text; a test
# keeps them equal). Written into a fresh DAGSTER_HOME when none exists yet.
DEFAULT_INSTANCE_YAML = """\
# Dagster instance for musicgen-pipeline. Copy into $DAGSTER_HOME (the `render` and `demo` commands do
# this for you when DAGSTER_HOME is unset: they use $MUSICGEN_DATA/dagster_home).
#
# Storage: SQLite files under $DAGSTER_HOME (embedded, nothing to install). For a real deployment use
# Postgres (pip install 'musicgen-pipeline[postgres]') by adding this block:
# storage:
#   postgres:
#     postgres_db:
#       hostname: {env: DAGSTER_PG_HOST}
#       username: {env: DAGSTER_PG_USER}
#       password: {env: DAGSTER_PG_PASSWORD}
#       db_name: {env: DAGSTER_PG_DB}
#       port: 5432

concurrency:
  pools:
    # Every pool without an explicit limit gets this one. The only pool in this code location is
    # `gpu` (generation and separation steps): one GPU step at a time across all runs. On a machine
    # with N GPUs set it per pool instead: `dagster instance concurrency set gpu N`.
    default_limit: 1
    granularity: op
  runs:
    # Runs launched by the sensor/schedule/UI through the run queue (the daemon of `dagster dev`).
    max_concurrent_runs: 4

run_monitoring:
  enabled: true

telemetry:
  enabled: false
"""


def dagster_home() -> Path:
    """``$DAGSTER_HOME``, or ``$MUSICGEN_DATA/dagster_home`` (exported into the environment) when unset."""
    raw = os.environ.get("DAGSTER_HOME", "").strip()
    home = Path(raw).expanduser().resolve() if raw else get_settings().data_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DEFAULT_INSTANCE_YAML, encoding="utf-8")
    return home


def get_instance() -> dg.DagsterInstance:
    import dagster as dg

    dagster_home()
    instance = dg.DagsterInstance.get()
    ensure_pools(instance)
    return instance


GPU_POOL = "gpu"


def ensure_pools(instance: dg.DagsterInstance) -> None:
    """Create the `gpu` pool's slots from the instance's ``pools.default_limit`` before any run uses it.

    Dagster creates a pool lazily on a step's first claim; two runs starting at the same moment on a
    fresh instance can both claim before the pool exists (seen with SQLite), so every entry point that
    registers or launches work (render, sensor, schedule, REST) creates it first. A limit set
    explicitly (`dagster instance concurrency set gpu N`) is left alone.
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    if instance.global_op_concurrency_default_limit is None:
        return
    if any(pool.name == GPU_POOL for pool in storage.get_pool_limits()):
        return
    storage.initialize_concurrency_limit_to_default(GPU_POOL)


# --- requests and partitions -----------------------------------------------------------------------


def partition_dir(key: str) -> Path:
    return get_settings().outputs_dir / check_partition_key(key)


def store_request(request: SoundtrackRequest, key: str | None = None) -> str:
    """Write ``outputs/<key>/request.json`` (the partition's config); return the key.

    `key` defaults to the request's content-based key; the UI path (a partition added by hand, the
    request given in the run config) passes the key the user chose.
    """
    key = key or request.partition_key()
    folder = partition_dir(key)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / REQUEST_FILE
    text = json.dumps(request.to_dict(), indent=2, sort_keys=True) + "\n"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return key


def register_request(instance: dg.DagsterInstance, request: SoundtrackRequest) -> str:
    """Store the request and add its dynamic partition (no-op when both exist); return the key."""
    key = store_request(request)
    ensure_pools(instance)
    if not instance.has_dynamic_partition(PARTITIONS_NAME, key):
        instance.add_dynamic_partitions(PARTITIONS_NAME, [key])
    return key


def load_partition_request(key: str) -> SoundtrackRequest:
    path = partition_dir(key) / REQUEST_FILE
    if not path.exists():
        raise InputError(
            f"partition {key!r}: no request stored at {path} (register it with `musicgen-pipeline render` "
            "or the inbox, or pass the request JSON in the run config of soundtrack_request)"
        )
    return parse_request(json.loads(path.read_text(encoding="utf-8")), source=str(path))


def is_rendered(key: str) -> bool:
    """True when the partition's soundtrack summary exists (written last by the soundtrack asset)."""
    return (partition_dir(key) / "summary.json").exists()


def run_tags(request: SoundtrackRequest) -> dict[str, str]:
    return {RUN_KEY_TAG: request.content_hash()[:16], "musicgen/scenes": str(len(request.scenes))}


# --- running ---------------------------------------------------------------------------------------


def _definitions() -> dg.Definitions:
    from musicgen_pipeline.definitions import defs

    return defs


def materialize(
    instance: dg.DagsterInstance,
    key: str,
    *,
    run_id: str | None = None,
    raise_on_error: bool = False,
    log_level: str = "INFO",
) -> dg.ExecuteInProcessResult:
    """Materialize every asset of partition `key` in this process, then refresh the catalog.

    `log_level` is the console's (the instance's event log records everything regardless).
    """
    defs = _definitions()
    request = load_partition_request(key)
    job = defs.resolve_job_def(RENDER_JOB)
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


def _console(log_level: str) -> dict[str, Any]:
    return {"loggers": {"console": {"config": {"log_level": log_level.upper()}}}}


def refresh_catalog(instance: dg.DagsterInstance, *, log_level: str = "WARNING") -> dg.ExecuteInProcessResult:
    job = _definitions().resolve_job_def(CATALOG_JOB)
    return job.execute_in_process(run_config=_console(log_level), instance=instance, raise_on_error=False)


def start_run_detached(instance: dg.DagsterInstance, key: str) -> str:
    """Start the partition's run in a detached child process; return its run id immediately.

    The child runs in its own session, so it outlives the caller. Until the child has created the run in
    the instance, `run_progress` reports it as queued (or failed, when the child died before that).
    """
    load_partition_request(key)  # fail here, not in the child, when the partition has no request
    run_id = str(uuid.uuid4())
    spawn_detached(["musicgen_pipeline.launch", key, run_id], key, run_id)
    return run_id


def spawn_detached(module_args: list[str], key: str, run_id: str, **record: Any) -> int:
    """Run `python -m <module_args>` for run `run_id` of partition `key` in its own session (it outlives
    the caller), logging to ``outputs/<key>/runs/<run_id>.log`` and leaving the pending record
    ``<run_id>.json`` (pid, start time, `record`) that `run_progress` reads until the run exists.
    A daemon thread reaps the child when it ends, so a long-lived caller (the REST server) keeps no
    zombies; it never blocks the caller. Returns the child's pid."""
    folder = partition_dir(key) / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DAGSTER_HOME=str(dagster_home()))
    with (folder / f"{run_id}.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", *module_args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    threading.Thread(target=proc.wait, name=f"reap-{run_id[:8]}", daemon=True).start()
    pending = {"run_id": run_id, "partition": key, "pid": proc.pid, "started": time.time(), **record}
    (folder / f"{run_id}.json").write_text(json.dumps(pending), encoding="utf-8")
    return proc.pid


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
    steps: list[str] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        if self.status == "succeeded":
            return 1.0
        return self.steps_done / self.steps_total if self.steps_total else 0.0


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


def _pending_record(run_id: str) -> dict[str, Any] | None:
    for path in get_settings().outputs_dir.glob(f"*/runs/{run_id}.json"):
        return json.loads(path.read_text(encoding="utf-8"))
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_progress(instance: dg.DagsterInstance, run_id: str) -> RunProgress | None:
    """Progress of a run from the instance; None for an unknown run id."""
    import dagster as dg

    run = instance.get_run_by_id(run_id)
    if run is None:
        pending = _pending_record(run_id)
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
    key = run.tags.get("dagster/partition")
    progress = RunProgress(run_id=run_id, status=RUN_STATUS.get(run.status.value, "running"), partition=key)
    progress.dagster_status = run.status.value
    plan = run.step_keys_to_execute
    records = instance.all_logs(run_id)
    started: list[str] = []
    done: set[str] = set()
    for entry in records:
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START and event.step_key not in started:
            started.append(event.step_key)
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_SKIPPED):
            done.add(event.step_key)
        elif event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY:
            progress.retries += 1
        elif event.event_type in (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE):
            info = event.event_specific_data
            err = getattr(info, "error", None)
            progress.error = (getattr(err, "message", None) or event.message or "run failed").strip()
    progress.steps = list(plan) if plan else started
    progress.steps_total = len(plan) if plan else max(len(started), len(done))
    progress.steps_done = len(done)
    running = [s for s in started if s not in done]
    progress.current_step = running[-1] if running else None
    if key and progress.status == "succeeded":
        summary = partition_dir(key) / "summary.json"
        if summary.exists():
            progress.soundtrack_path = json.loads(summary.read_text(encoding="utf-8")).get("soundtrack_path")
    return progress


def _main(argv: list[str]) -> int:
    """``python -m musicgen_pipeline.launch KEY RUN_ID``: the detached child of `start_run_detached`."""
    if len(argv) != 2:
        print("usage: python -m musicgen_pipeline.launch PARTITION_KEY RUN_ID", file=sys.stderr)
        return 2
    key, run_id = argv
    result = materialize(get_instance(), key, run_id=run_id)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
