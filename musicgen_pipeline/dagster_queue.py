"""Submitting runs to the Dagster daemon's run queue from a process that is not a code server.

Where a ``dagster-daemon`` runs the instance's run queue (the single-host deployment, ``dagster dev``),
REST jobs and ``render --detach`` join that queue instead of starting their own workers: they then obey
``concurrency.runs.max_concurrent_runs`` and tag limits together with sensor, schedule and UI runs, and
launch wherever the instance's run launcher puts them (a local process, a Docker container, a
Kubernetes pod with a GPU). Without a live daemon this project's own queue (`run_queue`) is used.

- `daemon_queue_live(instance)`: the instance queues runs (`QueuedRunCoordinator`) and its queue daemon
  sent a heartbeat recently.
- `submit(instance, job_name, key, run_id, tags, location_name)`: create the run (of partition `key`, or
  with `key` None of what its tags say, e.g. a bulk run's partition range) as the UI's launchpad
  would (job and plan snapshots from this code location, the code location's name for the daemon's
  workspace, the Python origin for the run worker) and enqueue it. ``location_name`` must be the name
  the daemon's workspace gives this code location (``musicgen_pipeline`` in the shipped
  ``workspace.yaml``; setting ``DAGSTER_CODE_LOCATION``).
- `queued_position(instance, run_id)` / `queued_count(instance)`: the line of QUEUED runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg

DEFINITIONS_MODULE = "musicgen_pipeline.definitions"
DEFINITIONS_ATTRIBUTE = "defs"
REPOSITORY_NAME = "__repository__"  # the repository name Dagster gives a `Definitions` object


def daemon_queue_live(instance: dg.DagsterInstance) -> bool:
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster._daemon.controller import get_daemon_statuses

    if not isinstance(instance.run_coordinator, QueuedRunCoordinator):
        return False
    statuses = get_daemon_statuses(instance, ["QUEUED_RUN_COORDINATOR"], ignore_errors=True)
    return any(status.healthy for status in statuses.values())


def submit(
    instance: dg.DagsterInstance,
    job_name: str,
    key: str | None,
    run_id: str,
    tags: dict[str, str],
    location_name: str,
) -> str:
    """Create run `run_id` of `job_name` for partition `key` (None: no single partition, e.g. a bulk
    run over the partition range its `tags` name) and put it in the daemon's queue."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.remote_origin import (
        RegisteredCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )

    from musicgen_pipeline.definitions import defs

    job = defs.resolve_job_def(job_name)
    recon = ReconstructableRepository.for_module(DEFINITIONS_MODULE, DEFINITIONS_ATTRIBUTE)
    origin = RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(
            code_location_origin=RegisteredCodeLocationOrigin(location_name), repository_name=REPOSITORY_NAME
        ),
        job_name=job_name,
    )
    run = instance.create_run_for_job(
        job_def=job,
        run_id=run_id,
        tags={**tags, "dagster/partition": key} if key is not None else tags,
        remote_job_origin=origin,
        job_code_origin=recon.get_reconstructable_job(job_name).get_python_origin(),
    )
    instance.submit_run(run.run_id, workspace=None)  # type: ignore[arg-type]
    return run.run_id


def _queued(instance: dg.DagsterInstance) -> list[str]:
    from dagster import DagsterRunStatus, RunsFilter

    records = instance.get_run_records(filters=RunsFilter(statuses=[DagsterRunStatus.QUEUED]), ascending=True)
    return [r.dagster_run.run_id for r in records]


def queued_count(instance: dg.DagsterInstance) -> int:
    return len(_queued(instance))


def queued_position(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """1-based place of a QUEUED run in the daemon's line (by arrival; priorities may reorder it)."""
    line = _queued(instance)
    return line.index(run_id) + 1 if run_id in line else None
