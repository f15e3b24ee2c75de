"""The scheduled cleanup (`musicgen_pipeline.retention`): job ``cleanup_files`` on RETENTION_CRON.

The op asks the instance which partitions have a run queued or in progress and hands them to
`retention.cleanup`, which never removes their files; everything else past RETENTION_UPLOAD_HOURS
(uploads and fetched inputs) or, opt-in, RETENTION_OUTPUT_DAYS (outputs) is removed. The result (items,
MB freed, items kept because in use) is the op's output metadata and a log line.
"""

import dagster as dg
from dagster import OpExecutionContext

from musicgen_pipeline.resources import SettingsResource, retention_cron
from musicgen_pipeline.retention import RetentionPolicy, cleanup

CLEANUP_JOB = "cleanup_files"
_ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def active_partition_keys(instance: dg.DagsterInstance) -> set[str]:
    """Partition keys of every run not finished yet (any job)."""
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=_ACTIVE))
    return {key for run in runs if (key := run.tags.get("dagster/partition"))}


@dg.op(description="Remove expired uploads/fetched inputs (and, opt-in, outputs) of finished jobs.")
def remove_expired_files(context: OpExecutionContext, settings: SettingsResource) -> None:
    config = settings.resolved
    policy = RetentionPolicy(
        upload_max_age_seconds=config.retention_upload_hours * 3600.0,
        output_max_age_seconds=config.retention_output_days * 86400.0
        if config.retention_output_days
        else None,
    )
    active = active_partition_keys(context.instance) - {context.run.tags.get("dagster/partition", "")}
    report = cleanup(config.data_dir, policy, active, asset_storage_dir=config.asset_storage_dir)
    context.log.info(report.summary())
    context.add_output_metadata(
        {
            "removed": len(report.removed),
            "freed_mb": round(report.freed_bytes / 1e6, 1),
            "kept_in_use": len(report.kept_in_use),
        }
    )


@dg.job(name=CLEANUP_JOB, description="Retention: expired uploads, fetched inputs and (opt-in) outputs.")
def cleanup_files() -> None:
    remove_expired_files()


retention_schedule = dg.ScheduleDefinition(
    name="retention_schedule",
    job=cleanup_files,
    cron_schedule=retention_cron(),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Runs cleanup_files (RETENTION_CRON): uploads past RETENTION_UPLOAD_HOURS, outputs past "
    "RETENTION_OUTPUT_DAYS when set; never a queued or running job's files.",
)
