"""`catalog`: one table of every rendered soundtrack (all partitions), from their ``summary.json``."""

import dagster as dg
import pandas as pd
from dagster import AssetExecutionContext

from musicgen_pipeline.naming import CATALOG_GROUP
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.resources import SettingsResource

CATALOG_COLUMNS = [
    "partition",
    "name",
    "scenes",
    "prompts",
    "model",
    "seed",
    "requested_seconds",
    "duration_seconds",
    "target_bpm",
    "transitions",
    "transitions_passed",
    "regenerations",
    "loudness_lufs",
    "generation_seconds",
    "total_seconds",
    "real_time_factor",
    "soundtrack_path",
    "rendered_at",
]


def build_catalog(store: PartitionStore) -> pd.DataFrame:
    rows = [{c: data.get(c) for c in CATALOG_COLUMNS} for data in store.summaries()]
    frame = pd.DataFrame(rows, columns=CATALOG_COLUMNS)
    return frame.sort_values("rendered_at", kind="stable").reset_index(drop=True) if len(frame) else frame


@dg.asset(
    deps=["soundtrack"],
    group_name=CATALOG_GROUP,
    kinds={"pandas", "csv"},
    description="Every rendered soundtrack (request, model, seed, durations, BPM, scores, timings, path), "
    "written to $MUSICGEN_DATA/outputs/catalog.csv.",
)
def catalog(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    store = settings.store
    frame = build_catalog(store)
    path = store.catalog_path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.part")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)
    preview = frame[
        ["partition", "duration_seconds", "target_bpm", "transitions_passed", "soundtrack_path"]
    ].tail(20)
    return dg.MaterializeResult(
        metadata={
            "rows": len(frame),
            "path": dg.MetadataValue.path(str(path)),
            "preview": dg.MetadataValue.md(preview.to_markdown(index=False) if len(frame) else "(empty)"),
        }
    )
