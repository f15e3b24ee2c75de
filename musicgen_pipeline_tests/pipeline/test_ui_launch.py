"""Which finished runs the UI-path sensors follow up: `render_after_request` renders a partition whose
`soundtrack_request` was materialized alone; `catalog_after_render` refreshes the catalog after any run
that rendered soundtracks, the asset graph's "Materialize all" (`__ASSET_JOB`) included."""

from __future__ import annotations

import dagster as dg
import pytest

from musicgen_pipeline.defs.sensors import only_the_request, renders_soundtrack

ASSET_JOB = "__ASSET_JOB"
ALL = frozenset(
    dg.AssetKey(k)
    for k in (
        "soundtrack_request",
        "scene_segments",
        "beat_grids",
        "aligned_segments",
        "segment_stems",
        "soundtrack",
        "transition_report",
    )
)
PARTITION = {"dagster/partition": "trip-1"}


def _run(
    job: str, selection: frozenset[dg.AssetKey] | None, tags: dict[str, str] | None = None
) -> dg.DagsterRun:
    return dg.DagsterRun(job_name=job, asset_selection=selection, tags=PARTITION if tags is None else tags)


@pytest.mark.parametrize(
    ("run", "renders", "lone_request"),
    [
        (_run("render_soundtrack", None), True, False),
        (_run("render_soundtrack", ALL), True, False),
        (_run(ASSET_JOB, ALL), True, False),  # "Materialize all" from the graph
        (_run(ASSET_JOB, frozenset({dg.AssetKey("soundtrack_request")})), False, True),
        (_run("render_soundtrack", frozenset({dg.AssetKey("soundtrack_request")})), False, True),
        (_run(ASSET_JOB, frozenset({dg.AssetKey("soundtrack_request")}), tags={}), False, False),
        (_run(ASSET_JOB, frozenset({dg.AssetKey("soundtrack")})), False, False),
        (_run("refresh_catalog", frozenset({dg.AssetKey("catalog")}), tags={}), False, False),
        (_run("separate_audio", None), False, False),
    ],
)
def test_which_runs_are_followed_up(run: dg.DagsterRun, renders: bool, lone_request: bool) -> None:
    assert renders_soundtrack(run) is renders
    assert only_the_request(run) is lone_request
