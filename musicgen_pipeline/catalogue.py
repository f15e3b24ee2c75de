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
others still run. A row's identity is its content (as for request files): moving a row, or the same
request in two rows, never renders it twice; a ``name`` column is content.

Hostile files: the catalogue is refused whole, in one line, when it is larger than
CATALOGUE_MAX_BYTES, not UTF-8, malformed CSV (a NUL byte, a field over the csv module's limit) or
YAML that does not parse (deep nesting included) or uses aliases (``&a``/``*a``: no exponential
"billion laughs" expansion). Every row, CSV ``request`` cell or YAML item, goes through the same safe
JSON rules as a request file (`safe_json`: nesting, NaN/Infinity, huge numbers, long strings).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from musicgen_pipeline import safe_json
from musicgen_pipeline.errors import InputError
from musicgen_pipeline.request import SoundtrackRequest, load_json_text, parse_request

CATALOGUE_MAX_BYTES = 10 * 1024 * 1024

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
        return load_json_text(row["request"], source="request cell")
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


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors/aliases: a catalogue cannot expand exponentially ("billion laughs")."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.YAMLError(f"aliases (*name) are not allowed, line {mark.line + 1}")
        return super().compose_node(parent, index)


def _read_text(path: Path) -> str:
    with path.open("rb") as handle:
        data = handle.read(CATALOGUE_MAX_BYTES + 1)
    if len(data) > CATALOGUE_MAX_BYTES:
        raise InputError(f"{path.name}: is larger than the limit of {CATALOGUE_MAX_BYTES} bytes")
    return safe_json.decode_utf8(data, path.name)


def _csv_rows(path: Path, text: str) -> list[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        return [(i + 2, r) for i, r in enumerate(reader)]
    except csv.Error as exc:
        raise InputError(f"{path.name}: malformed CSV at line {reader.line_num} ({exc})") from None


def _yaml_items(path: Path, text: str) -> list[tuple[int, Any]]:
    try:
        doc = yaml.load(text, Loader=_NoAliasLoader) or []  # a SafeLoader without aliases
    except (yaml.YAMLError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else " ".join(str(exc).split())
        raise InputError(f"{path.name}: not valid YAML ({reason[:200]})") from None
    if isinstance(doc, dict) and "requests" in doc:
        doc = doc["requests"]
    if not isinstance(doc, list):
        raise InputError(f"{path.name}: must hold a list of requests (or a 'requests' list)")
    return [(i + 1, item) for i, item in enumerate(doc)]


def _as_json_document(item: Any, source: str) -> Any:
    """A YAML item put through the same rules as a JSON request (`safe_json`)."""
    try:
        text = json.dumps(item, default=str)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{source}: cannot be read as a request ({exc})") from None
    return load_json_text(text, source=source)


def read_catalogue(path: Path, *, default_model: str | None = None) -> list[CatalogueRow]:
    """Every row of the catalogue, parsed or with its one-line error; `InputError` when the file as a
    whole cannot be read (too large, not UTF-8, malformed CSV/YAML)."""
    rows: list[CatalogueRow] = []
    text = _read_text(path)
    raws: list[tuple[int, Any]] = []
    if path.suffix.lower() == ".csv":
        for number, row in _csv_rows(path, text):
            try:
                raws.append((number, _row_to_raw(row)))
            except InputError as exc:
                rows.append(CatalogueRow(number, None, str(exc)))
    else:
        for number, item in _yaml_items(path, text):
            try:
                raws.append((number, _as_json_document(item, f"{path.name} row {number}")))
            except InputError as exc:
                rows.append(CatalogueRow(number, None, str(exc)))
    for number, raw in raws:
        try:
            request = parse_request(raw, source=f"{path.name} row {number}", default_model=default_model)
            rows.append(CatalogueRow(number, request, None))
        except InputError as exc:
            rows.append(CatalogueRow(number, None, str(exc)))
    return sorted(rows, key=lambda r: r.row)
