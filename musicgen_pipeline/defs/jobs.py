"""The jobs of the code location and the tags their steps carry.

- ``render_soundtrack``: every asset of one soundtrack partition (the `soundtrack` group).
- ``refresh_catalog``: the unpartitioned catalog table.
- ``separate_audio``: stems of one uploaded/fetched file (REST ``/separate``).
- ``bulk_generation``: the scenes of a range of soundtrack partitions, generated in one batched pass
  (`scene_generation`, the `bulk` group); each partition's own ``render_soundtrack`` run follows.

The jobs that run GPU steps carry `GPU_RUN_TAGS` (musicgen_pipeline/gpu_runs.py) as *run* tags: the
tag the instance's run tag limit counts (`musicgen/gpu`) and the `dagster-k8s/config` that gives the run
pod a GPU on Kubernetes (K8sRunLauncher builds the pod from run tags; op tags would only reach per-step
pods of `k8s_job_executor`, which this project does not use: models load once per run).
"""

from __future__ import annotations

import dagster as dg

from musicgen_pipeline.gpu_runs import GPU_RUN_TAGS
from musicgen_pipeline.naming import (
    BULK_GROUP,
    BULK_JOB,
    CATALOG_GROUP,
    CATALOG_JOB,
    RENDER_JOB,
    SEPARATION_GROUP,
    SEPARATION_JOB,
    SOUNDTRACK_GROUP,
)

render_soundtrack = dg.define_asset_job(
    RENDER_JOB,
    selection=dg.AssetSelection.groups(SOUNDTRACK_GROUP),
    description="Render one soundtrack request (a partition of soundtrack_requests) end to end.",
    tags=GPU_RUN_TAGS,
)
refresh_catalog = dg.define_asset_job(CATALOG_JOB, selection=dg.AssetSelection.groups(CATALOG_GROUP))
separate_audio = dg.define_asset_job(
    SEPARATION_JOB,
    selection=dg.AssetSelection.groups(SEPARATION_GROUP),
    description="Split one uploaded/fetched audio file into stems (one partition per REST /separate job).",
    tags=GPU_RUN_TAGS,
)
bulk_generation = dg.define_asset_job(
    BULK_JOB,
    selection=dg.AssetSelection.groups(BULK_GROUP),
    description="Bulk rendering: generate the scenes of a range of soundtrack partitions in one batched pass "
    "(run tags dagster/asset_partition_range_start/end); each partition's render_soundtrack run follows "
    "(sensor render_after_bulk) and finds its scenes made.",
    tags=GPU_RUN_TAGS,
)
