"""Sensors: the drop folder (``$MUSICGEN_DATA/inbox/``, handled by `musicgen_pipeline.inbox`), the
catalog refresh after every run that rendered soundtracks, and the render that follows a lone
`soundtrack_request` materialization (the UI's Materialize on that asset).

The inbox tick says what it did on the tick itself: a log line (accepted files, rejected files with
their first problem) and, when nothing is launched, the skip reason; its cursor is an ISO 8601 time.
The two run-status sensors watch every job of the code location, the asset graph's implicit
``__ASSET_JOB`` included, and decide from the run's asset selection (`renders_soundtrack`,
`only_the_request`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg

from musicgen_pipeline.bulk_plan import bulk_chunks, bulk_tags, keys_of_run, order_by_model
from musicgen_pipeline.defs import jobs
from musicgen_pipeline.defs.partitions import soundtrack_partitions
from musicgen_pipeline.inbox import PlannedRun, cursor_text, cursor_time, process_inbox
from musicgen_pipeline.instance import ensure_pools
from musicgen_pipeline.naming import BULK_JOB, BULK_RUN_TAG, CATALOG_JOB, RENDER_JOB, SOURCE_TAG, run_tags
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.resources import SettingsResource
from musicgen_pipeline.settings import Settings


def group_into_bulks(
    planned: list[PlannedRun], new: list[str], store: PartitionStore, config: Settings
) -> tuple[list[str], list[dg.RunRequest]]:
    """(the new partitions in the order to add them, the tick's run requests): the requests whose
    partitions this tick adds, grouped by model into bulk runs of at most MUSICGEN_MAX_BATCH (added in
    one request, model by model, so each bulk is a contiguous range); a lone one, and a request whose
    partition existed already (its run key is its partition key, so a replayed tick launches nothing
    twice), is a render run of its own."""
    model_of = {k: store.load_request(k).model or config.musicgen_model for k in new}
    new = order_by_model(new, model_of)
    chunks = [c for c in bulk_chunks(new, new, model_of, config.musicgen_max_batch) if len(c) > 1]
    in_bulk = {key for chunk in chunks for key in chunk}
    sources = {r.partition_key: r.tags.get(SOURCE_TAG, "") for r in planned}
    requests = [
        dg.RunRequest(run_key=r.run_key, partition_key=r.partition_key, job_name=r.job_name, tags=r.tags)
        for r in planned
        if r.partition_key not in in_bulk
    ]
    for chunk in chunks:
        files = ", ".join(dict.fromkeys(sources[k] for k in chunk))
        requests.append(
            dg.RunRequest(
                run_key=f"bulk:{chunk[0]}..{chunk[-1]}",
                job_name=BULK_JOB,
                tags={**bulk_tags(chunk), SOURCE_TAG: f"inbox bulk: {files}"[:200]},
            )
        )
    return new, requests


def build_inbox_sensor(
    render_job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition,
    bulk_job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition,
) -> dg.SensorDefinition:
    @dg.sensor(
        name="inbox_sensor",
        jobs=[render_job, bulk_job],
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Renders every *.json request dropped into $MUSICGEN_DATA/inbox/ (idempotent); the new "
        "requests of one tick render as bulk runs (one per model, at most MUSICGEN_MAX_BATCH each).",
    )
    def inbox_sensor(context: dg.SensorEvaluationContext, settings: SettingsResource) -> dg.SensorResult:
        config = settings.resolved
        ensure_pools(context.instance)
        tick = process_inbox(
            config.data_dir,
            cursor_time(context.cursor),
            max_batch=config.sensor_max_batch,
            settle_seconds=config.sensor_settle_seconds,
            default_model=config.musicgen_model,
        )
        if tick.rejected:
            context.log.warning(tick.outcome)
        elif tick.accepted:
            context.log.info(tick.outcome)
        new = [
            k
            for k in tick.new_partitions
            if not context.instance.has_dynamic_partition(soundtrack_partitions.name, k)
        ]
        new, run_requests = group_into_bulks(tick.run_requests, new, settings.store, config)
        return dg.SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=[soundtrack_partitions.build_add_request(new)] if new else [],
            cursor=cursor_text(tick.cursor),
            skip_reason=tick.skip_reason,
        )

    return inbox_sensor


REQUEST_ASSET = dg.AssetKey("soundtrack_request")
REPORT_ASSET = dg.AssetKey("transition_report")
PARTITION_TAG = "dagster/partition"


def renders_soundtrack(run: dg.DagsterRun) -> bool:
    """Whether `run` materialized whole soundtracks: the render job, or any asset run (the UI's
    "Materialize all", `__ASSET_JOB`) whose selection reaches `transition_report`."""
    if run.job_name == RENDER_JOB and not run.asset_selection:
        return True
    return bool(run.asset_selection) and REPORT_ASSET in run.asset_selection


def only_the_request(run: dg.DagsterRun) -> bool:
    """Whether `run` materialized `soundtrack_request` and nothing else (the UI's Materialize on it)."""
    return set(run.asset_selection or ()) == {REQUEST_ASSET} and PARTITION_TAG in run.tags


def _after_runs(
    name: str,
    request_job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition,
    description: str,
    *,
    status: dg.DagsterRunStatus = dg.DagsterRunStatus.SUCCESS,
    interval: int = 5,
) -> Callable[[Callable[..., Any]], dg.RunStatusSensorDefinition]:
    """The decorator of a run-status sensor of this code location: watches every job's runs reaching
    `status`, requests runs of `request_job`, on by default."""
    return dg.run_status_sensor(
        name=name,
        run_status=status,
        request_job=request_job,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=description,
    )


def render_run_tags(
    store: PartitionStore, key: str, *, source: str, bulk_run: str | None = None
) -> dict[str, str]:
    """A sensor-launched render run's tags: `naming.run_tags` of the partition's request (as the inbox's
    render runs carry them); only `source` / `bulk_run` when its request cannot be read (the render
    then fails saying why)."""
    try:
        return run_tags(store.load_request(key), source=source, bulk_run=bulk_run)
    except (OSError, ValueError):  # InputError included
        tags = {SOURCE_TAG: source}
        return {**tags, BULK_RUN_TAG: bulk_run} if bulk_run else tags


def build_catalog_sensor(
    catalog_job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition,
) -> dg.RunStatusSensorDefinition:
    @_after_runs(
        "catalog_after_render",
        catalog_job,
        f"Refreshes the catalog table after every successful run that rendered soundtracks: "
        f"{RENDER_JOB} runs and runs launched from the asset graph that include transition_report.",
        interval=10,
    )
    def catalog_after_render(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
        run = context.dagster_run
        if not renders_soundtrack(run):
            return dg.SkipReason(f"run {run.run_id[:8]} ({run.job_name}) rendered no soundtrack")
        return dg.RunRequest(run_key=f"catalog-{run.run_id}", job_name=CATALOG_JOB)

    return catalog_after_render


def build_render_after_request_sensor(
    render_job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition,
) -> dg.RunStatusSensorDefinition:
    @_after_runs(
        "render_after_request",
        render_job,
        "Materializing soundtrack_request alone (the UI's Materialize on that asset, with a new "
        f"partition and the request in its config) renders nothing else: this starts {RENDER_JOB} for that "
        "partition, so the soundtrack follows.",
    )
    def render_after_request(
        context: dg.RunStatusSensorContext, settings: SettingsResource
    ) -> dg.RunRequest | dg.SkipReason:
        run = context.dagster_run
        if not only_the_request(run):
            return dg.SkipReason(f"run {run.run_id[:8]} ({run.job_name}) was not a lone soundtrack_request")
        key = run.tags[PARTITION_TAG]
        context.log.info(f"soundtrack_request {key} materialized alone (run {run.run_id[:8]}): rendering it")
        return dg.RunRequest(
            run_key=f"render-after-{run.run_id}",
            partition_key=key,
            job_name=RENDER_JOB,
            tags=render_run_tags(settings.store, key, source=f"ui (after run {run.run_id[:8]})"),
        )

    return render_after_request


def build_render_after_bulk_sensor(
    render_job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition, status: dg.DagsterRunStatus
) -> dg.RunStatusSensorDefinition:
    """After a bulk run (success, or failure: whatever it did not generate, each render generates alone),
    one render run per partition it covered, tagged as every render run of its request is
    (`render_run_tags`) plus the bulk run it follows."""
    name = "render_after_bulk" if status == dg.DagsterRunStatus.SUCCESS else "render_after_failed_bulk"

    @_after_runs(
        name,
        render_job,
        f"After a {BULK_JOB} run ({status.value.lower()}), starts {RENDER_JOB} for each partition it "
        "covered: each request's own assets, files, metadata and checks (its scenes are made already; what "
        "the bulk did not make, the render generates alone and fails alone).",
        status=status,
    )
    def render_after_bulk(
        context: dg.RunStatusSensorContext, settings: SettingsResource
    ) -> list[dg.RunRequest] | dg.SkipReason:
        run = context.dagster_run
        if run.job_name != BULK_JOB:
            return dg.SkipReason(f"run {run.run_id[:8]} ({run.job_name}) is not a bulk run")
        order = context.instance.get_dynamic_partitions(soundtrack_partitions.name)
        keys = keys_of_run(run.tags, order)
        context.log.info(
            f"bulk run {run.run_id[:8]} {status.value.lower()}: rendering {len(keys)} partition(s)"
        )
        source = f"bulk run {run.run_id[:8]}"
        return [
            dg.RunRequest(
                run_key=f"{run.run_id}:{key}",
                partition_key=key,
                job_name=RENDER_JOB,
                tags=render_run_tags(settings.store, key, source=source, bulk_run=run.run_id),
            )
            for key in keys
        ]

    return render_after_bulk


inbox_sensor = build_inbox_sensor(jobs.render_soundtrack, jobs.bulk_generation)
render_after_bulk = build_render_after_bulk_sensor(jobs.render_soundtrack, dg.DagsterRunStatus.SUCCESS)
render_after_failed_bulk = build_render_after_bulk_sensor(jobs.render_soundtrack, dg.DagsterRunStatus.FAILURE)
catalog_after_render = build_catalog_sensor(jobs.refresh_catalog)
render_after_request = build_render_after_request_sensor(jobs.render_soundtrack)
