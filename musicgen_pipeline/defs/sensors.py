"""Sensors: the drop folder (``$MUSICGEN_DATA/inbox/``, handled by `musicgen_pipeline.inbox`) and the
catalog refresh after every successful render."""

from __future__ import annotations

import dagster as dg

from musicgen_pipeline.defs import jobs
from musicgen_pipeline.defs.partitions import soundtrack_partitions
from musicgen_pipeline.inbox import process_inbox
from musicgen_pipeline.instance import ensure_pools
from musicgen_pipeline.naming import CATALOG_JOB, RENDER_JOB
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
        cursor = float(context.cursor) if context.cursor else 0.0
        tick = process_inbox(
            config.data_dir,
            cursor,
            max_batch=config.sensor_max_batch,
            settle_seconds=config.sensor_settle_seconds,
            default_model=config.musicgen_model,
        )
        for path in tick.rejected:
            context.log.warning(f"rejected {path.name}: see {path.with_name(path.stem + '.error.json')}")
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
            cursor=repr(tick.cursor),
            skip_reason=tick.skip_reason,
        )

    return inbox_sensor


def build_catalog_sensor(
    render_job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition,
    catalog_job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition,
) -> dg.RunStatusSensorDefinition:
    @dg.run_status_sensor(
        name="catalog_after_render",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[render_job],
        request_job=catalog_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Refreshes the catalog table after every successful {RENDER_JOB} run.",
    )
    def catalog_after_render(context: dg.RunStatusSensorContext) -> dg.RunRequest:
        return dg.RunRequest(run_key=f"catalog-{context.dagster_run.run_id}", job_name=CATALOG_JOB)

    return catalog_after_render


inbox_sensor = build_inbox_sensor(jobs.render_soundtrack)
catalog_after_render = build_catalog_sensor(jobs.render_soundtrack, jobs.refresh_catalog)
