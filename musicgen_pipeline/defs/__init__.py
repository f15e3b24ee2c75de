"""The Dagster code location, in Dagster's `load_from_defs_folder` layout (`definitions.py` loads it).

Every module below is imported by the loader and whatever Dagster definitions it holds at module level
are merged into one `Definitions`:

- ``assets/<name>.py``: one asset per file, named after it (the soundtrack graph: soundtrack_request ->
  scene_segments -> beat_grids -> aligned_segments -> segment_stems -> soundtrack -> transition_report;
  the catalog; separated_stems for REST ``/separate``).
- ``partitions.py``: the dynamic partitions (one per soundtrack request, one per separation job).
- ``jobs.py``: the jobs and their tags (render_soundtrack, refresh_catalog, separate_audio).
- ``sensors.py``: the inbox sensor and the catalog refresh after each render.
- ``schedules.py``: the nightly catalogue schedule.
- ``resources.py``: the resources (configuration, models, IO manager) and the executor.

Modules here hold Dagster wiring only; what they do lives in plain modules of the package
(`inbox`, `catalogue`, `partition_store`, `quality`, `media`, `audio/`, `models/`).
"""
