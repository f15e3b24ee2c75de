"""`catalog`: one table of every rendered soundtrack (all partitions), from their ``summary.json``."""

import json
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from dagster import AssetExecutionContext

from musicgen_pipeline.settings import get_settings

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


def catalog_path() -> Path:
    return get_settings().outputs_dir / "catalog.csv"


def build_catalog(outputs_dir: Path) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for summary in sorted(outputs_dir.glob("*/summary.json")):
        try:
            data = json.loads(summary.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        rows.append({c: data.get(c) for c in CATALOG_COLUMNS})
    frame = pd.DataFrame(rows, columns=CATALOG_COLUMNS)
    return frame.sort_values("rendered_at", kind="stable").reset_index(drop=True) if len(frame) else frame


@dg.asset(
    deps=["soundtrack"],
    group_name="catalog",
    kinds={"pandas", "csv"},
    description="Every rendered soundtrack (request, model, seed, durations, BPM, scores, timings, path), "
    "written to $MUSICGEN_DATA/outputs/catalog.csv.",
)
def catalog(context: AssetExecutionContext) -> dg.MaterializeResult:
    settings = get_settings()
    frame = build_catalog(settings.outputs_dir)
    path = catalog_path()
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
