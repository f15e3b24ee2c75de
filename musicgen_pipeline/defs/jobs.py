"""The jobs of the code location and the tags their steps carry.

- ``render_soundtrack``: every asset of one soundtrack partition (the `soundtrack` group).
- ``refresh_catalog``: the unpartitioned catalog table.
- ``separate_audio``: stems of one uploaded/fetched file (REST ``/separate``).

`GPU_OP_TAGS` go on the steps that use the GPU (generation, stems, separation): on Kubernetes
(dagster-k8s) each such step's pod asks for one GPU. Job-level tags belong here too.
"""

from __future__ import annotations

import json

import dagster as dg

from musicgen_pipeline.naming import (
    CATALOG_GROUP,
    CATALOG_JOB,
    RENDER_JOB,
    SEPARATION_GROUP,
    SEPARATION_JOB,
    SOUNDTRACK_GROUP,
)

GPU_OP_TAGS = {
    "dagster-k8s/config": json.dumps(
        {
            "container_config": {
                "resources": {"limits": {"nvidia.com/gpu": 1}, "requests": {"nvidia.com/gpu": 1}}
            }
        }
    )
}

render_soundtrack = dg.define_asset_job(
    RENDER_JOB,
    selection=dg.AssetSelection.groups(SOUNDTRACK_GROUP),
    description="Render one soundtrack request (a partition of soundtrack_requests) end to end.",
)
refresh_catalog = dg.define_asset_job(CATALOG_JOB, selection=dg.AssetSelection.groups(CATALOG_GROUP))
separate_audio = dg.define_asset_job(
    SEPARATION_JOB,
    selection=dg.AssetSelection.groups(SEPARATION_GROUP),
    description="Split one uploaded/fetched audio file into stems (one partition per REST /separate job).",
)
