"""Asset outputs live on the shared data volume ($MUSICGEN_DATA/dagster_storage), not under the
process's own $DAGSTER_HOME: another process or pod (another DAGSTER_HOME, the same data volume) loads
them, so a run can be re-executed from failure anywhere."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from musicgen_pipeline.definitions import defs
from musicgen_pipeline.instance import register_request
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.request import parse_request
from musicgen_pipeline.resources import DataVolumeIOManager, SettingsResource
from musicgen_pipeline_tests.pipeline.conftest import make_home, three_scene_request


def test_outputs_are_on_the_data_volume_and_load_under_another_home(
    instance: dg.DagsterInstance,
    store: PartitionStore,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = parse_request(three_scene_request())
    key = register_request(instance, store, request)
    result = defs.resolve_job_def("render_soundtrack").execute_in_process(
        instance=instance, partition_key=key, asset_selection=[dg.AssetKey("soundtrack_request")]
    )
    assert result.success
    stored = data_dir / "dagster_storage" / "soundtrack_request" / key
    assert stored.is_file()
    assert not list(Path(os.environ["DAGSTER_HOME"]).rglob(key))  # nothing of it in the process's own home

    # Another pod: a fresh DAGSTER_HOME, the same data volume.
    monkeypatch.setenv("DAGSTER_HOME", str(make_home(tmp_path / "other_pod")))
    with dg.build_resources({"io_manager": DataVolumeIOManager(settings=SettingsResource())}) as resources:
        upstream = dg.build_output_context(asset_key=dg.AssetKey("soundtrack_request"), partition_key=key)
        context = dg.build_input_context(
            asset_key=dg.AssetKey("soundtrack_request"), partition_key=key, upstream_output=upstream
        )
        loaded = resources.io_manager.load_input(context)
    # The asset hands on the request (a SoundtrackRequest, or its dict form): the same request either way.
    assert (loaded if isinstance(loaded, type(request)) else parse_request(loaded)) == request
