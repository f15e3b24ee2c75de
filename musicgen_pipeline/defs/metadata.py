"""What the Dagster UI shows a person about an asset: links to the player, files, rounded numbers, tables.

Conventions every asset follows (issue: the UI hid what people came for):
- ``listen``: a clickable `MetadataValue.url` to the partition's listening page served by
  ``musicgen-pipeline serve`` (``LISTEN_URL``, default ``http://127.0.0.1:8000``), with an anchor to the
  asset's own section.
- Real file paths under ``*_file`` keys (``soundtrack_file``, ``report_file``, ...): never ``path``, which
  Dagster's filesystem IO manager overwrites with its pickle's location.
- Numbers rounded to what a person reads: `sig3` (3 significant digits) for scores and ratios,
  `ms` (seconds to the millisecond) for times.
- Speed named by its direction: ``audio_seconds_per_wall_second`` (above 1: faster than real time).
- Several files or per-scene values as `MetadataValue.table`, never raw JSON or markdown with clipped
  columns.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import dagster as dg

LISTEN_PATH = "/listen"
SPEED_KEY = "audio_seconds_per_wall_second"


def sig3(value: float) -> float:
    """`value` to 3 significant digits (0.9956113920000007 -> 0.996, 1234.5 -> 1230.0)."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, 2 - math.floor(math.log10(abs(value))))


def ms(seconds: float) -> float:
    """Seconds to the millisecond."""
    return round(float(seconds), 3)


def listen_url(base_url: str, partition_key: str, section: str = "") -> str:
    url = f"{base_url.rstrip('/')}{LISTEN_PATH}/{quote(partition_key)}"
    return f"{url}#{section}" if section else url


def listen_link(base_url: str, partition_key: str, section: str = "") -> dg.UrlMetadataValue:
    return dg.MetadataValue.url(listen_url(base_url, partition_key, section))


def speed(audio_seconds: float, wall_seconds: float) -> dict[str, float]:
    """``{audio_seconds_per_wall_second: ...}``: how many seconds of audio one wall second made."""
    return {SPEED_KEY: sig3(audio_seconds / wall_seconds) if wall_seconds > 0 else 0.0}


def table(
    columns: Sequence[tuple[str, str, str]], rows: Iterable[Mapping[str, Any]]
) -> dg.TableMetadataValue:
    """A table from (name, type, description) columns and dict rows (values: str, int, float, bool)."""
    schema = dg.TableSchema(
        columns=[dg.TableColumn(name, type=kind, description=text) for name, kind, text in columns]
    )
    return dg.MetadataValue.table(records=[dg.TableRecord(dict(row)) for row in rows], schema=schema)


def files_table(
    rows: Iterable[Mapping[str, Any]], extra: Sequence[tuple[str, str, str]] = ()
) -> dg.TableMetadataValue:
    """One row per file: ``file`` (the full path) plus `extra` columns."""
    return table([*extra, ("file", "string", "full path of the file")], rows)
