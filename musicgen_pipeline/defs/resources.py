"""The resources every job gets, and the executor.

- ``settings``: the run's configuration (`SettingsResource`: environment, overridable per run).
- ``musicgen`` / ``stem_splitter``: the models of the soundtrack graph (loaded once per process).
- ``separator``: the stem splitter of REST ``/separate``, always Demucs whatever STEM_SOURCE picks for
  the crossfades.
- ``io_manager``: asset outputs pickled under ``$MUSICGEN_DATA/dagster_storage`` (`DataVolumeIOManager`),
  the volume every process of a deployment shares, so any process or pod can re-execute from failure.

Executor: in-process. A run's steps share one process, so MusicGen and Demucs load once per run (and
once per process for in-process `render` of many partitions), never once per step; GPU steps are
serialised across runs by the `gpu` concurrency pool (see ``musicgen_pipeline/dagster.yaml``).
"""

from __future__ import annotations

import dagster as dg

from musicgen_pipeline.resources import (
    DataVolumeIOManager,
    MusicGenResource,
    SettingsResource,
    StemSplitterResource,
)

defs = dg.Definitions(
    resources={
        "settings": SettingsResource(),
        "musicgen": MusicGenResource(),
        "stem_splitter": StemSplitterResource(),
        "separator": StemSplitterResource(source="demucs"),
        "io_manager": DataVolumeIOManager(settings=SettingsResource()),
    },
    executor=dg.in_process_executor,
)
