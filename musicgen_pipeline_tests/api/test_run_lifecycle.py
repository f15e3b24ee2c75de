"""Run lifecycle through a real server: bounded execution (one run slot, one queued job, then 503 with
Retry-After), DELETE of a queued and of a running job, and a run worker killed with SIGKILL while it
holds the ``gpu`` slot: its job fails within seconds, the slot is freed and the next job completes."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import pytest

from musicgen_pipeline.instance import GPU_POOL, instance_yaml
from musicgen_pipeline.run_health import WORKER_PID_TAG
from musicgen_pipeline_tests.api.server import ApiServer, server_env, stop_detached_runs

API_KEY = "lifecycle-key"
KEY = {"X-API-Key": API_KEY}
SOUNDTRACK = {
    "base_prompt": "lifecycle test",
    "scenes": [{"mood": "calm", "duration": 3}, {"mood": "bright", "duration": 3}],
    "crossfade_duration": 1.0,
}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("lifecycle")
    home = base / "dagster_home"
    home.mkdir()
    text = instance_yaml().replace("max_concurrent_runs: 4", "max_concurrent_runs: 1")
    assert "max_concurrent_runs: 1" in text
    (home / "dagster.yaml").write_text(text, encoding="utf-8")
    return base


@pytest.fixture(scope="module")
def server(base: Path) -> Iterator[ApiServer]:
    env = server_env(
        base, API_KEY=API_KEY, API_MAX_QUEUED_JOBS="1", USE_QUALITY_LOOP="false", STEM_SOURCE="dsp"
    )
    srv = ApiServer(env, base / "server.log").start()
    try:
        yield srv
    finally:
        srv.stop()
        stop_detached_runs(base / "data")


@pytest.fixture(scope="module")
def instance(server: ApiServer, base: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(base / "dagster_home")) as inst:
        yield inst


def _submit(server: ApiServer) -> httpx.Response:
    return httpx.post(f"{server.url}/generate/soundtrack", headers=KEY, json=SOUNDTRACK, timeout=60)


def _status(server: ApiServer, job_id: str) -> dict:
    return httpx.get(f"{server.url}/jobs/{job_id}", timeout=30).json()


def _until(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def _worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    run = instance.get_run_by_id(run_id)
    return int(run.tags[WORKER_PID_TAG]) if run and WORKER_PID_TAG in run.tags else None


def _started(instance: dg.DagsterInstance, run_id: str, step: str) -> bool:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_START).records
    return any(r.event_log_entry.dagster_event.step_key == step for r in records)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_bounded_queue_then_503_and_delete_of_queued_and_running_jobs(
    server: ApiServer, instance: dg.DagsterInstance
) -> None:
    first = _submit(server)
    assert first.status_code == 200, first.text
    running = first.json()["job_id"]
    second = _submit(server)
    assert second.status_code == 200, second.text
    waiting = second.json()["job_id"]
    body = _status(server, waiting)
    assert body["status"] == "queued" and body["queue_position"] == 1
    refused = _submit(server)
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) >= 30
    assert "run queue is full" in refused.json()["detail"]

    canceled = httpx.delete(f"{server.url}/jobs/{waiting}", headers=KEY, timeout=30)
    assert canceled.status_code == 200 and canceled.json()["status"] == "failed"
    assert "canceled" in canceled.json()["error"]
    assert httpx.delete(f"{server.url}/jobs/{waiting}", headers=KEY, timeout=30).status_code == 409

    pid = _until(lambda: _worker_pid(instance, running), 300, "the first job's worker to start its run")
    assert httpx.delete(f"{server.url}/jobs/{running}", headers=KEY, timeout=30).status_code == 200
    final = _until(lambda: (b := _status(server, running))["status"] == "failed" and b, 60, "termination")
    assert "cancel" in final["error"].lower() or "interrupt" in final["error"].lower(), final
    _until(lambda: not _alive(pid), 30, "the terminated worker to exit")
    assert instance.get_run_by_id(running).status == dg.DagsterRunStatus.CANCELED


@pytest.mark.slow
def test_sigkill_of_a_worker_holding_the_gpu_slot_fails_its_job_and_the_next_job_completes(
    server: ApiServer, instance: dg.DagsterInstance
) -> None:
    killed = _submit(server).json()["job_id"]
    _until(lambda: _started(instance, killed, "scene_segments"), 300, "the run to enter scene_segments")
    slots = instance.event_log_storage.get_concurrency_info(GPU_POOL).claimed_slots
    assert [s.run_id for s in slots] == [killed]
    pid = _worker_pid(instance, killed)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    body = _until(lambda: (b := _status(server, killed))["status"] == "failed" and b, 60, "the failure")
    detected = time.monotonic() - killed_at
    assert f"worker process (pid {pid}" in body["error"], body
    assert detected < 30, f"the dead run was failed {detected:.0f} s after the kill"
    assert instance.event_log_storage.get_concurrency_info(GPU_POOL).claimed_slots == []

    following = _submit(server).json()["job_id"]
    body = _until(
        lambda: (b := _status(server, following))["status"] in ("completed", "failed") and b, 600, "job two"
    )
    assert body["status"] == "completed", body
