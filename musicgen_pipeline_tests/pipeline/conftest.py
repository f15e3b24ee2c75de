"""Pipeline fixtures: a temporary data folder and Dagster instance per test (or per module)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from musicgen_pipeline.instance import instance_yaml
from musicgen_pipeline.partition_store import PartitionStore


def make_home(root: Path) -> Path:
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(instance_yaml(), encoding="utf-8")
    return home


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("MUSICGEN_DATA", str(data))
    monkeypatch.setenv("DAGSTER_HOME", str(make_home(tmp_path)))
    return data


@pytest.fixture
def store(data_dir: Path) -> PartitionStore:
    return PartitionStore.for_data_dir(data_dir)


def soundtrack_assets() -> list[dg.AssetsDefinition]:
    """The assets of the render job (the `soundtrack` group), from the code location."""
    from musicgen_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    return [
        a
        for a in graph.assets_defs
        if a.is_materializable and set(a.group_names_by_key.values()) == {"soundtrack"}
    ]


@pytest.fixture
def instance(data_dir: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.get() as inst:
        yield inst


def three_scene_request(seconds: float = 3.0, **overrides: object) -> dict[str, object]:
    request: dict[str, object] = {
        "base_prompt": "cinematic orchestral soundtrack with sweeping strings",
        "scenes": [
            {"mood": "peaceful morning", "duration": seconds},
            {"mood": "joyful celebration", "duration": seconds},
            {"mood": "gentle farewell", "duration": seconds},
        ],
        "crossfade_duration": 0.5,
        "seed": 7,
        "model": "tiny-random",
    }
    request.update(overrides)
    return request


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread for the module: on a shared 2-core machine, two intra-op threads spinning
    against other processes made the tiny models ~9x slower (1.5 s vs 14 s for one 2.5 s row)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
