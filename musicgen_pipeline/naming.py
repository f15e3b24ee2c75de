"""Names the code location and its callers share: jobs, dynamic partitions, run tags. Plain Python.

The definitions in `defs/` are built with these names and the callers (the run service `launch`, the
inbox, the REST layer, the tests) address them by name, so neither side imports the other.
"""

from __future__ import annotations

from musicgen_pipeline.request import SoundtrackRequest

# Jobs.
RENDER_JOB = "render_soundtrack"  # every asset of one soundtrack partition
CATALOG_JOB = "refresh_catalog"  # the unpartitioned catalog table
SEPARATION_JOB = "separate_audio"  # stems of one uploaded/fetched file (REST /separate)
BULK_JOB = "bulk_generation"  # scene generation of several soundtrack partitions in one batched pass

# Dynamic partitions.
PARTITIONS_NAME = "soundtrack_requests"  # key = SoundtrackRequest.partition_key()
SEPARATION_PARTITIONS_NAME = "separation_requests"  # key = sep-<job id>

# Asset groups (a job selects its group).
SOUNDTRACK_GROUP = "soundtrack"
CATALOG_GROUP = "catalog"
SEPARATION_GROUP = "separation"
BULK_GROUP = "bulk"  # `scene_generation`: not in the render job (a single render generates in its own step)

# Run tags.
RUN_KEY_TAG = "musicgen/request_hash"
SCENES_TAG = "musicgen/scenes"
SOURCE_TAG = "musicgen/source"  # where a request came from (inbox file, catalogue row)
BULK_RUN_TAG = "musicgen/bulk_run"  # on a render run that follows a bulk run: that run's id
BULK_KEYS_TAG = "musicgen/bulk_keys"  # a bulk run's partitions, comma-separated (what follows it renders)
# Dagster's own tags of a run over a range of partitions (what a single_run/multi_run backfill launches).
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


def run_tags(
    request: SoundtrackRequest, *, source: str | None = None, bulk_run: str | None = None
) -> dict[str, str]:
    """Tags of a render run of `request` (what the UI filters by): its request hash and scene count, and
    when given where it came from (`source`: an inbox file, a catalogue row, a bulk run) and the bulk run
    it follows (`bulk_run`: its run id). Every launcher of a render run takes its tags from here."""
    tags = {RUN_KEY_TAG: request.content_hash()[:16], SCENES_TAG: str(len(request.scenes))}
    if source is not None:
        tags[SOURCE_TAG] = source
    if bulk_run is not None:
        tags[BULK_RUN_TAG] = bulk_run
    return tags
