"""The bulk schedule: render every not-yet-rendered row of the catalogue file (`musicgen_pipeline.catalogue`)
on a cron (CATALOG_CRON, default nightly), as bulk runs: the rows' scenes generated together in batched
MusicGen calls (job ``bulk_generation``, one run per model and at most MUSICGEN_MAX_BATCH rows), each
row's own render run following its bulk run (sensor ``render_after_bulk``). Rows already rendered (their
summary exists) or queued/running are not launched again; a bad row is logged with its number and
skipped."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

from musicgen_pipeline.bulk_plan import bulk_chunks, bulk_tags, order_by_model, parse_keys
from musicgen_pipeline.catalogue import find_catalogue, read_catalogue
from musicgen_pipeline.defs import jobs
from musicgen_pipeline.errors import InputError
from musicgen_pipeline.instance import register_request
from musicgen_pipeline.naming import BULK_JOB, BULK_KEYS_TAG, PARTITIONS_NAME, RENDER_JOB, SOURCE_TAG
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.request import SoundtrackRequest
from musicgen_pipeline.resources import SettingsResource, catalog_cron
from musicgen_pipeline.settings import DEFAULT_MAX_BATCH

_ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _in_flight(instance: dg.DagsterInstance) -> set[str]:
    """Partitions with a render run or a bulk run queued or running."""
    keys: set[str] = set()
    for run in instance.get_runs(filters=dg.RunsFilter(job_name=RENDER_JOB, statuses=_ACTIVE)):
        if "dagster/partition" in run.tags:
            keys.add(run.tags["dagster/partition"])
    for run in instance.get_runs(filters=dg.RunsFilter(job_name=BULK_JOB, statuses=_ACTIVE)):
        keys.update(parse_keys(run.tags.get(BULK_KEYS_TAG)))
    return keys


def catalogue_run_requests(
    instance: dg.DagsterInstance,
    data_dir: Path,
    tick_id: str,
    *,
    default_model: str | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> tuple[list[dg.RunRequest], list[str]]:
    """(bulk run requests for the unrendered rows, log lines for skipped / bad rows).

    The rows to render are registered grouped by model (so a model's new partitions are contiguous) and
    cut into bulk runs (`bulk_plan.bulk_chunks`: contiguous, one model, at most `max_batch`); the render
    of each partition follows its bulk run (sensor ``render_after_bulk``).
    """
    path = find_catalogue(data_dir)
    if path is None:
        return [], [f"no catalogue at {data_dir}/catalog.csv or catalog.yaml"]
    store = PartitionStore.for_data_dir(data_dir)
    notes: list[str] = []
    try:
        rows = read_catalogue(path, default_model=default_model)
    except InputError as exc:  # the whole file is unreadable: one line, and the next tick tries again
        return [], [f"catalogue skipped: {exc}"]
    busy = _in_flight(instance)
    todo: dict[str, tuple[SoundtrackRequest, int]] = {}
    for row in rows:
        if row.request is None:
            notes.append(f"{path.name} row {row.row} skipped: {row.error}")
            continue
        key = row.request.partition_key()
        if key in todo or key in busy or store.is_rendered(key):
            continue
        todo[key] = (row.request, row.row)
    model_of = {key: request.model or default_model or "" for key, (request, _) in todo.items()}
    keys = [register_request(instance, store, todo[k][0]) for k in order_by_model(todo, model_of)]
    order = instance.get_dynamic_partitions(PARTITIONS_NAME)
    requests = []
    for chunk in bulk_chunks(order, keys, model_of, max_batch):
        rows_text = ", ".join(str(todo[k][1]) for k in chunk)
        requests.append(
            dg.RunRequest(
                run_key=f"bulk:{chunk[0]}..{chunk[-1]}@{tick_id}",
                tags={**bulk_tags(chunk), SOURCE_TAG: f"{path.name}: rows {rows_text}"[:200]},
            )
        )
    return requests, notes


def build_catalogue_schedule(
    bulk_job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition,
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="catalogue_schedule",
        job=bulk_job,
        cron_schedule=catalog_cron(),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Renders every not-yet-rendered row of $MUSICGEN_DATA/catalog.csv (or catalog.yaml) as bulk "
        "runs (one per model, at most MUSICGEN_MAX_BATCH rows each); each row's render follows its bulk run.",
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
            context.instance,
            config.data_dir,
            tick,
            default_model=config.musicgen_model,
            max_batch=config.musicgen_max_batch,
        )
        for note in notes:
            context.log.warning(note)
        if not requests:
            return dg.SkipReason(
                "every catalogue row is rendered or running" + (f"; {notes[0]}" if notes else "")
            )
        return requests

    return catalogue_schedule


catalogue_schedule = build_catalogue_schedule(jobs.bulk_generation)
