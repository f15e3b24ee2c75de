"""The quality loop through Dagster retries, counted in the event log."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from musicgen_pipeline.defs.assets.transition_report import CHECK_LOOP
from musicgen_pipeline.instance import register_request
from musicgen_pipeline.launch import materialize
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.request import parse_request

pytestmark = pytest.mark.slow


def _request(scenes: int) -> dict[str, object]:
    return {
        "base_prompt": "ambient synth pads",
        "scenes": [{"mood": f"part {i}", "duration": 2.0} for i in range(scenes)],
        "crossfade_duration": 0.3,
        "seed": 21,
        "stem_aware": False,
    }


def _retries(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [
        e.dagster_event.step_key
        for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)
    ]


@pytest.fixture
def loop_env(instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    monkeypatch.setenv("MUSICGEN_MODEL", "tiny-random")
    monkeypatch.setenv("STEM_SOURCE", "dsp")
    monkeypatch.setenv("MAX_REGEN_ATTEMPTS", "2")
    return instance


@pytest.mark.parametrize("scenes", [2, 3])
def test_impossible_threshold_retries_exactly_the_budget_per_seam(
    loop_env: dg.DagsterInstance,
    store: PartitionStore,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    scenes: int,
) -> None:
    monkeypatch.setenv("MFCC_SIMILARITY_MIN", "1.5")  # a cosine similarity never exceeds 1
    key = register_request(loop_env, store, parse_request(_request(scenes)))
    result = materialize(loop_env, store, key, log_level="WARNING")
    assert result.success
    retries = _retries(loop_env, result.run_id)
    assert retries == ["scene_segments"] * (2 * (scenes - 1))  # MAX_REGEN_ATTEMPTS per failing seam
    state = next((data_dir / "outputs" / key / "generation").iterdir())
    for scene in range(1, scenes):
        attempts = sorted((state / f"scene_{scene:02d}").glob("attempt_*.json"))
        assert len(attempts) == 3  # first try + 2 regenerations, each persisted
        seeds = [json.loads(p.read_text())["seed"] for p in attempts]
        assert seeds == [21 + 1000 * scene + a for a in range(3)]
        accepted = json.loads((state / f"scene_{scene:02d}" / "accepted.json").read_text())
        best = min(accepted["attempts"], key=lambda a: (a["failures"], a["badness"], a["attempt"]))
        assert accepted["exhausted"] and accepted["record"]["attempt"] == best["attempt"]
    assert len(list((state / "scene_00").glob("attempt_*.json"))) == 1  # accepted work is never redone
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks[CHECK_LOOP].passed
    assert checks[CHECK_LOOP].severity == dg.AssetCheckSeverity.WARN
    report = json.loads((data_dir / "outputs" / key / "transition_report.json").read_text())
    assert [s["regenerations"] for s in report["quality_loop"]["scenes"]] == [0] + [2] * (scenes - 1)


def test_met_thresholds_never_retry(
    loop_env: dg.DagsterInstance, store: PartitionStore, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "MFCC_SIMILARITY_MIN": "-1",
        "SPECTRAL_FLUX_MAX": "1e12",
        "CHROMA_CORRELATION_MIN": "-1",
        "ENERGY_RATIO_MAX": "1e12",
    }.items():
        monkeypatch.setenv(name, value)
    key = register_request(loop_env, store, parse_request(_request(3)))
    result = materialize(loop_env, store, key, log_level="WARNING")
    assert result.success
    assert _retries(loop_env, result.run_id) == []
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks[CHECK_LOOP].passed


def test_quality_loop_off(
    loop_env: dg.DagsterInstance, store: PartitionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MFCC_SIMILARITY_MIN", "1.5")
    monkeypatch.setenv("USE_QUALITY_LOOP", "false")
    key = register_request(loop_env, store, parse_request(_request(2)))
    result = materialize(loop_env, store, key, log_level="WARNING")
    assert result.success and _retries(loop_env, result.run_id) == []
