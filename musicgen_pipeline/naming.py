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

# Dynamic partitions.
PARTITIONS_NAME = "soundtrack_requests"  # key = SoundtrackRequest.partition_key()
SEPARATION_PARTITIONS_NAME = "separation_requests"  # key = sep-<job id>

# Asset groups (a job selects its group).
SOUNDTRACK_GROUP = "soundtrack"
CATALOG_GROUP = "catalog"
SEPARATION_GROUP = "separation"

# Run tags.
RUN_KEY_TAG = "musicgen/request_hash"
SCENES_TAG = "musicgen/scenes"
SOURCE_TAG = "musicgen/source"  # where a request came from (inbox file, catalogue row)


def run_tags(request: SoundtrackRequest) -> dict[str, str]:
    """Tags of a render run of `request` (what the UI filters by)."""
    return {RUN_KEY_TAG: request.content_hash()[:16], SCENES_TAG: str(len(request.scenes))}
