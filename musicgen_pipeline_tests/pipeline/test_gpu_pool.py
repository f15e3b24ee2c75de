"""Two partitions launched together (detached processes) never run their GPU steps at the same time."""

from __future__ import annotations

import itertools
import json
import time

import dagster as dg
import pytest

from musicgen_pipeline.definitions import defs
from musicgen_pipeline.instance import GPU_POOL, register_request
from musicgen_pipeline.launch import RunWatcher, start_run_detached
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.request import parse_request
from musicgen_pipeline_tests.pipeline.conftest import soundtrack_assets

pytestmark = pytest.mark.slow

GPU_STEPS = {"scene_segments", "segment_stems"}


def _gpu_intervals(instance: dg.DagsterInstance, run_id: str) -> list[tuple[float, float, str]]:
    starts: dict[str, float] = {}
    out = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key not in GPU_STEPS:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            out.append((starts[event.step_key], entry.timestamp, f"{run_id[:8]}:{event.step_key}"))
    return out


def test_gpu_steps_of_concurrent_runs_never_overlap(
    instance: dg.DagsterInstance, store: PartitionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUSICGEN_MODEL", "tiny-random")
    monkeypatch.setenv("DEMUCS_MODEL", "tiny-random")
    monkeypatch.setenv("USE_QUALITY_LOOP", "false")
    # Both GPU assets are in the pool; CPU assets are not.
    pools = {a.key.to_user_string(): a.op.pool for a in soundtrack_assets()}
    assert {k for k, p in pools.items() if p == GPU_POOL} == GPU_STEPS
    # The GPU request is a run (job) tag; op tags would reach a pod only under k8s_job_executor (unused).
    job_tags = defs.resolve_job_def("render_soundtrack").run_tags
    assert json.loads(job_tags["dagster-k8s/config"])["container_config"]["resources"]["limits"] == {
        "nvidia.com/gpu": "1"
    }
    assert all("dagster-k8s/config" not in a.op.tags for a in soundtrack_assets())

    keys = []
    for seed in (1, 2):
        request = parse_request(
            {
                "base_prompt": "pool test",
                "scenes": [{"duration": 3}, {"duration": 3}],
                "seed": seed,
                "crossfade_duration": 0.5,
            }
        )
        keys.append(register_request(instance, store, request))
    run_ids = [start_run_detached(instance, store, key) for key in keys]
    watcher = RunWatcher(instance, store)
    deadline = time.time() + 400
    while time.time() < deadline:
        states = [watcher.progress(r) for r in run_ids]
        if all(s is not None and s.status in ("succeeded", "failed") for s in states):
            break
        time.sleep(1.0)
    assert [s.status for s in states] == ["succeeded", "succeeded"], [s.error for s in states]
    assert {s.partition for s in states} == set(keys)

    intervals = sorted(i for r in run_ids for i in _gpu_intervals(instance, r))
    assert len(intervals) == 4
    for (_, end, name), (start, _, next_name) in itertools.pairwise(intervals):
        assert start >= end, f"{next_name} started at {start} before {name} ended at {end}"
    assert instance.event_log_storage.get_concurrency_info(GPU_POOL).slot_count == 1
