"""The Dagster code location: assets, checks, jobs, sensors, schedule, resources and executor.

`dagster dev -w workspace.yaml` (or `-m musicgen_pipeline.definitions`) loads `defs`. Importing this
module does not import torch: models load on first use inside a step.

Executor: in-process. A run's steps share one process, so MusicGen and Demucs load once per run (and
once per process for in-process `render` of many partitions), never once per step; GPU steps are
serialised across runs by the `gpu` concurrency pool (see dagster.yaml).
"""

from __future__ import annotations

import dagster as dg

from musicgen_pipeline.assets.alignment import aligned_segments
from musicgen_pipeline.assets.beats import beat_grids
from musicgen_pipeline.assets.catalog import catalog
from musicgen_pipeline.assets.generation import scene_segments
from musicgen_pipeline.assets.mixing import soundtrack
from musicgen_pipeline.assets.report import transition_report
from musicgen_pipeline.assets.request_asset import soundtrack_request
from musicgen_pipeline.assets.stems import segment_stems
from musicgen_pipeline.launch import CATALOG_JOB, RENDER_JOB
from musicgen_pipeline.resources import MusicGenResource, StemSplitterResource
from musicgen_pipeline.schedules import build_catalogue_schedule
from musicgen_pipeline.sensors import build_catalog_sensor, build_inbox_sensor

SOUNDTRACK_ASSETS = [
    soundtrack_request,
    scene_segments,
    beat_grids,
    aligned_segments,
    segment_stems,
    soundtrack,
    transition_report,
]

render_job = dg.define_asset_job(
    RENDER_JOB,
    selection=dg.AssetSelection.assets(*SOUNDTRACK_ASSETS),
    description="Render one soundtrack request (a partition of soundtrack_requests) end to end.",
)
catalog_job = dg.define_asset_job(CATALOG_JOB, selection=dg.AssetSelection.assets(catalog))

defs = dg.Definitions(
    assets=[*SOUNDTRACK_ASSETS, catalog],
    jobs=[render_job, catalog_job],
    sensors=[build_inbox_sensor(render_job), build_catalog_sensor(render_job, catalog_job)],
    schedules=[build_catalogue_schedule(render_job)],
    resources={
        "musicgen": MusicGenResource(),
        "stem_splitter": StemSplitterResource(),
        "io_manager": dg.FilesystemIOManager(),
    },
    executor=dg.in_process_executor,
)

# REST `/separate`: stem separation of an uploaded or fetched file, one `separation_requests`
# partition per job (owned by the REST layer: musicgen_pipeline/assets/separation.py).
from musicgen_pipeline.assets.separation import separation_defs  # noqa: E402

defs = dg.Definitions.merge(defs, separation_defs)
