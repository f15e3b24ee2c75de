"""The bulk schedule: render every not-yet-rendered row of the catalogue file (`musicgen_pipeline.catalogue`)
on a cron (CATALOG_CRON, default nightly). Rows already rendered (their summary exists) or queued/running
are not launched again; a bad row is logged with its number and skipped."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

from musicgen_pipeline.catalogue import find_catalogue, read_catalogue
from musicgen_pipeline.defs import jobs
from musicgen_pipeline.errors import InputError
from musicgen_pipeline.instance import register_request
from musicgen_pipeline.naming import RENDER_JOB, SOURCE_TAG, run_tags
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.resources import SettingsResource, catalog_cron

_ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _in_flight(instance: dg.DagsterInstance, key: str) -> bool:
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=RENDER_JOB, tags={"dagster/partition": key}, statuses=_ACTIVE), limit=1
    )
    return bool(runs)


def catalogue_run_requests(
    instance: dg.DagsterInstance, data_dir: Path, tick_id: str, *, default_model: str | None = None
) -> tuple[list[dg.RunRequest], list[str]]:
    """(run requests for unrendered rows, log lines for skipped / bad rows)."""
    path = find_catalogue(data_dir)
    if path is None:
        return [], [f"no catalogue at {data_dir}/catalog.csv or catalog.yaml"]
    store = PartitionStore.for_data_dir(data_dir)
    requests: list[dg.RunRequest] = []
    notes: list[str] = []
    seen: set[str] = set()
    try:
        rows = read_catalogue(path, default_model=default_model)
    except InputError as exc:  # the whole file is unreadable: one line, and the next tick tries again
        return [], [f"catalogue skipped: {exc}"]
    for row in rows:
        if row.request is None:
            notes.append(f"{path.name} row {row.row} skipped: {row.error}")
            continue
        key = row.request.partition_key()
        if key in seen or store.is_rendered(key) or _in_flight(instance, key):
            continue
        seen.add(key)
        register_request(instance, store, row.request)
        requests.append(
            dg.RunRequest(
                run_key=f"{key}@{tick_id}",
                partition_key=key,
                tags={**run_tags(row.request), SOURCE_TAG: f"{path.name}:{row.row}"},
            )
        )
    return requests, notes


def build_catalogue_schedule(
    render_job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition,
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="catalogue_schedule",
        job=render_job,
        cron_schedule=catalog_cron(),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Renders every not-yet-rendered row of $MUSICGEN_DATA/catalog.csv (or catalog.yaml).",
    )
    def catalogue_schedule(
        context: dg.ScheduleEvaluationContext, settings: SettingsResource
    ) -> list[dg.RunRequest] | dg.SkipReason:
        try:
            tick = context.scheduled_execution_time.isoformat()
        except dg.DagsterInvariantViolationError:
            raise
        except Exception:  # an evaluation outside a real tick (tests, `dagster schedule preview`)
            tick = datetime.now(timezone.utc).isoformat()
        config = settings.resolved
        requests, notes = catalogue_run_requests(
            context.instance, config.data_dir, tick, default_model=config.musicgen_model
        )
        for note in notes:
            context.log.warning(note)
        if not requests:
            return dg.SkipReason(
                "every catalogue row is rendered or running" + (f"; {notes[0]}" if notes else "")
            )
        return requests

    return catalogue_schedule


catalogue_schedule = build_catalogue_schedule(jobs.render_soundtrack)
