from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from musicgen_pipeline.cli import main
from musicgen_pipeline.instance import dagster_home, instance_yaml, register_request
from musicgen_pipeline.launch import run_progress
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.request import parse_request
from musicgen_pipeline_tests.pipeline.conftest import three_scene_request, write_json

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_dagster_yaml_is_the_one_written_into_new_homes() -> None:
    shipped = (REPO / "musicgen_pipeline" / "dagster.yaml").read_text(encoding="utf-8")
    assert instance_yaml() == shipped and "default_limit: 1" in shipped
    assert not (REPO / "dagster.yaml").exists()  # one copy only: the package data


def test_dagster_home_defaults_under_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = dagster_home(tmp_path / "data")
    assert home == tmp_path / "data" / "dagster_home"
    assert (home / "dagster.yaml").read_text(encoding="utf-8") == instance_yaml()


def test_register_is_idempotent_and_creates_the_gpu_pool(
    instance: dg.DagsterInstance, store: PartitionStore
) -> None:
    request = parse_request(three_scene_request())
    assert register_request(instance, store, request) == register_request(instance, store, request)
    assert instance.get_dynamic_partitions("soundtrack_requests") == [request.partition_key()]
    assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 1
    assert run_progress(instance, store, "no-such-run") is None


def test_code_location_loads_without_torch() -> None:
    code = "import sys, musicgen_pipeline.definitions as d; d.defs.get_repository_def(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)


def test_render_bad_request_is_one_line_exit_2(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_json(data_dir / "bad.json", {"base_prompt": "x", "scenes": [{"duration": 0}]})
    assert main(["render", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "scenes[0].duration=0" in err[0] and "between 1 and 600" in err[0]


@pytest.mark.slow
def test_ui_path_request_in_run_config_for_a_hand_made_partition(
    instance: dg.DagsterInstance, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from musicgen_pipeline.definitions import defs

    monkeypatch.setenv("MUSICGEN_MODEL", "tiny-random")
    monkeypatch.setenv("STEM_SOURCE", "dsp")
    instance.add_dynamic_partitions("soundtrack_requests", ["my-ui-request"])
    request = '{"prompt": "solo cello", "duration": 1.5, "output_format": "flac"}'
    result = defs.resolve_job_def("render_soundtrack").execute_in_process(
        run_config={"ops": {"soundtrack_request": {"config": {"request_json": request}}}},
        instance=instance,
        partition_key="my-ui-request",
    )
    assert result.success
    folder = data_dir / "outputs" / "my-ui-request"
    assert (folder / "request.json").exists() and (folder / "soundtrack.flac").exists()
    summary = (folder / "summary.json").read_text(encoding="utf-8")
    assert '"transitions": 0' in summary
