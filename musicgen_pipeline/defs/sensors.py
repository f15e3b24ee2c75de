"""Sensors: the drop folder (``$MUSICGEN_DATA/inbox/``, handled by `musicgen_pipeline.inbox`), the
catalog refresh after every run that rendered soundtracks, and the render that follows a lone
`soundtrack_request` materialization (the UI's Materialize on that asset).

The inbox tick says what it did on the tick itself: a log line (accepted files, rejected files with
their first problem) and, when nothing is launched, the skip reason; its cursor is an ISO 8601 time.
The two run-status sensors watch every job of the code location, the asset graph's implicit
``__ASSET_JOB`` included, and decide from the run's asset selection (`renders_soundtrack`,
`only_the_request`)."""

from __future__ import annotations

import dagster as dg

from musicgen_pipeline.defs import jobs
from musicgen_pipeline.defs.partitions import soundtrack_partitions
from musicgen_pipeline.inbox import cursor_text, cursor_time, process_inbox
from musicgen_pipeline.instance import ensure_pools
from musicgen_pipeline.naming import CATALOG_JOB, RENDER_JOB, SOURCE_TAG
from musicgen_pipeline.resources import SettingsResource


def build_inbox_sensor(render_job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        name="inbox_sensor",
        job=render_job,
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Renders every *.json request dropped into $MUSICGEN_DATA/inbox/ (batched, idempotent).",
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
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=r.run_key, partition_key=r.partition_key, job_name=r.job_name, tags=r.tags
                )
                for r in tick.run_requests
            ],
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


def build_catalog_sensor(
    catalog_job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition,
) -> dg.RunStatusSensorDefinition:
    @dg.run_status_sensor(
        name="catalog_after_render",
        run_status=dg.DagsterRunStatus.SUCCESS,
        request_job=catalog_job,
        minimum_interval_seconds=10,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Refreshes the catalog table after every successful run that rendered soundtracks: "
        f"{RENDER_JOB} runs and runs launched from the asset graph that include transition_report.",
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
    @dg.run_status_sensor(
        name="render_after_request",
        run_status=dg.DagsterRunStatus.SUCCESS,
        request_job=render_job,
        minimum_interval_seconds=5,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Materializing soundtrack_request alone (the UI's Materialize on that asset, with a new "
        f"partition and the request in its config) renders nothing else: this starts {RENDER_JOB} for that "
        "partition, so the soundtrack follows.",
    )
    def render_after_request(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
        run = context.dagster_run
        if not only_the_request(run):
            return dg.SkipReason(f"run {run.run_id[:8]} ({run.job_name}) was not a lone soundtrack_request")
        key = run.tags[PARTITION_TAG]
        context.log.info(f"soundtrack_request {key} materialized alone (run {run.run_id[:8]}): rendering it")
        return dg.RunRequest(
            run_key=f"render-after-{run.run_id}",
            partition_key=key,
            job_name=RENDER_JOB,
            tags={SOURCE_TAG: f"ui (after run {run.run_id[:8]})"},
        )

    return render_after_request


inbox_sensor = build_inbox_sensor(jobs.render_soundtrack)
catalog_after_render = build_catalog_sensor(jobs.refresh_catalog)
render_after_request = build_render_after_request_sensor(jobs.render_soundtrack)
