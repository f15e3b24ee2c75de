"""Hostile catalogue files: a bad row is skipped with its one-line reason while the other rows still
parse; a file that cannot be read as a whole is one line, and the schedule tick survives it."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from musicgen_pipeline.catalogue import read_catalogue
from musicgen_pipeline.defs.schedules import catalogue_run_requests
from musicgen_pipeline.errors import InputError
from musicgen_pipeline_tests.pipeline.conftest import three_scene_request

GOOD = json.dumps(three_scene_request(seed=3))


def _cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


BAD_CELLS = [
    ("[" * 50_000 + "]" * 50_000, "nested more than 32 levels deep"),
    ('{"prompt": "x", "duration": NaN}', "NaN is not a number"),
    ('{"prompt": "x", "seed": ' + "9" * 4500 + "}", "4500 digits"),
    ('{"prompt": "\\ud800"}', "lone UTF-16 surrogate"),
    ('{"prompt": "x",', "not valid JSON"),
]


@pytest.mark.parametrize(("cell", "words"), BAD_CELLS, ids=[b[1][:20] for b in BAD_CELLS])
def test_bad_request_cell_skips_only_its_row(tmp_path: Path, cell: str, words: str) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text(f"name,request\nbad,{_cell(cell)}\ngood,{_cell(GOOD)}\n", encoding="utf-8")
    bad, good = read_catalogue(path)
    assert bad.request is None and words in bad.error and "\n" not in bad.error
    assert good.request is not None and good.request.seed == 3


WHOLE_FILE = [
    ("catalog.csv", b"name,prompt\nx," + b"p" * 200_000 + b"\n", "malformed CSV at line"),
    ("catalog.csv", b"name,prompt\nx,caf\xe9\n", "is not UTF-8 text"),
    ("catalog.yaml", b"[" * 5_000 + b"]" * 5_000, "not valid YAML (nested too deeply)"),
    ("catalog.yaml", b"a: &a [1, 2]\nb: &b [*a, *a]\nc: [*b, *b]\n", "aliases (*name) are not allowed"),
    ("catalog.yaml", b"{not: [closed\n", "not valid YAML"),
]


@pytest.mark.parametrize(("name", "data", "words"), WHOLE_FILE, ids=[w[2][:24] for w in WHOLE_FILE])
def test_unreadable_catalogue_is_one_line(tmp_path: Path, name: str, data: bytes, words: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        read_catalogue(path)
    assert words in str(caught.value) and "\n" not in str(caught.value), str(caught.value)


def test_yaml_rows_follow_the_json_rules_and_row_order_does_not_matter(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    request = three_scene_request(seed=4)
    path.write_text(
        "- {prompt: x, duration: .nan}\n"
        f"- {{prompt: '{'y' * 20_000}'}}\n"
        f"- {json.dumps(request)}\n"
        f"- {json.dumps(request)}\n",
        encoding="utf-8",
    )
    nan, long, first, again = read_catalogue(path)
    assert nan.request is None and "NaN is not a number" in nan.error
    assert long.request is None and "longer than 10000" in long.error
    assert first.request is not None and first.request.partition_key() == again.request.partition_key()


def test_schedule_tick_survives_an_unreadable_catalogue(instance: dg.DagsterInstance, data_dir: Path) -> None:
    (data_dir / "catalog.yaml").write_bytes(b"[" * 5_000 + b"]" * 5_000)
    requests, notes = catalogue_run_requests(instance, data_dir, "tick-1")
    assert requests == []
    assert notes == ["catalogue skipped: catalog.yaml: not valid YAML (nested too deeply)"]
