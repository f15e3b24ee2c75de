"""The catalogue file the bulk schedule renders (CATALOG_CRON, default nightly); plain Python.

The catalogue is ``$MUSICGEN_DATA/catalog.csv`` or, when that is absent, ``catalog.yaml`` / ``.yml``.

- YAML: a list of request objects (or ``{"requests": [...]}``), each as in a request JSON file.
- CSV: one request per row. Either a ``request`` column holding the request JSON, or flat columns:
  ``name``, ``base_prompt`` (or ``prompt``), ``moods`` and ``durations`` (``|``-separated, one per
  scene; or ``mood`` + ``duration`` for one scene), and any of ``seed``, ``model``,
  ``crossfade_duration``, ``beat_aligned``, ``tempo_match``, ``stem_aware``, ``output_format``,
  ``scene_conditioning``.

Only rows not rendered yet (no ``outputs/<key>/summary.json``) and not already queued or running are
launched (`defs/schedules.py`); a row with errors is logged with its row number and skipped, the
others still run.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from musicgen_pipeline.errors import InputError
from musicgen_pipeline.request import SoundtrackRequest, parse_request

_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_NUMERIC = {"seed": int, "crossfade_duration": float}


def find_catalogue(data_dir: Path) -> Path | None:
    for name in ("catalog.csv", "catalog.yaml", "catalog.yml"):
        if (data_dir / name).is_file():
            return data_dir / name
    return None


def _row_to_raw(row: dict[str, str]) -> dict[str, Any]:
    row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
    if row.get("request"):
        return json.loads(row["request"])
    raw: dict[str, Any] = {}
    for key, value in row.items():
        if value == "":
            continue
        if key in ("beat_aligned", "tempo_match", "stem_aware"):
            raw[key] = _BOOL.get(value.lower(), value)
        elif key in _NUMERIC:
            try:
                raw[key] = _NUMERIC[key](value)
            except ValueError:
                raw[key] = value
        elif key not in ("moods", "durations", "mood", "duration", "prompt"):
            raw[key] = value
    moods = [m.strip() for m in row.get("moods", "").split("|")] if row.get("moods") else None
    durations = [d.strip() for d in row.get("durations", "").split("|")] if row.get("durations") else None
    if moods or durations:
        moods = moods or [""] * len(durations or [])
        durations = durations or []
        if len(moods) != len(durations):
            raise InputError(f"moods has {len(moods)} entries but durations has {len(durations)}")
        raw["scenes"] = [{"mood": m, "duration": d} for m, d in zip(moods, durations, strict=True)]
        if "base_prompt" not in raw and row.get("prompt"):
            raw["base_prompt"] = row["prompt"]
    else:
        if row.get("prompt"):
            raw["prompt"] = row["prompt"]
        elif row.get("base_prompt"):
            raw["prompt"] = raw.pop("base_prompt")
        if row.get("duration"):
            raw["duration"] = row["duration"]
        if row.get("mood"):
            raw["mood"] = row["mood"]
    return raw


@dataclass(frozen=True)
class CatalogueRow:
    row: int  # 1-based, as a spreadsheet shows it (header = row 1 for CSV)
    request: SoundtrackRequest | None
    error: str | None


def read_catalogue(path: Path, *, default_model: str | None = None) -> list[CatalogueRow]:
    rows: list[CatalogueRow] = []
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            items = [(i + 2, r) for i, r in enumerate(csv.DictReader(handle))]
        raws: list[tuple[int, Any]] = []
        for number, row in items:
            try:
                raws.append((number, _row_to_raw(row)))
            except (InputError, json.JSONDecodeError) as exc:
                rows.append(CatalogueRow(number, None, str(exc)))
    else:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        if isinstance(doc, dict) and "requests" in doc:
            doc = doc["requests"]
        if not isinstance(doc, list):
            raise InputError(f"{path}: must hold a list of requests (or a 'requests' list)")
        raws = [(i + 1, item) for i, item in enumerate(doc)]
    for number, raw in raws:
        name = raw.get("name") if isinstance(raw, dict) else None
        try:
            request = parse_request(
                raw,
                source=f"{path.name} row {number}",
                name=name or f"{path.stem}-{number}",
                default_model=default_model,
            )
            rows.append(CatalogueRow(number, request, None))
        except InputError as exc:
            rows.append(CatalogueRow(number, None, str(exc)))
    return sorted(rows, key=lambda r: r.row)
