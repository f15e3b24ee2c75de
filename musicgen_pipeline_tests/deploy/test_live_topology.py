"""The one-host production topology, live: real Postgres, code server, webserver and daemon as separate
processes with deploy/dagster.prod.yaml, tiny-random models.

In order, against one deployment:
1. **A dead worker frees the GPU.** A request dropped into the inbox becomes a run through the daemon's
   queue; once its generation step holds the `gpu` pool slot, the run worker is SIGKILLed. Run
   monitoring (LocalRunLauncher's health check) fails the run, and the slot is freed, within bounds.
2. **The inbox through the queue.** A valid request and an invalid one are dropped: the invalid one is
   moved to `rejected/` with its reason, the valid one renders to SUCCESS through the queue (enqueued and
   dequeued by the daemon, GPU run tags present), on the slot the killed run held.
3. **UI "Materialize"** (GraphQL, as the UI sends it: Dagster's hidden `__ASSET_JOB`, no job tags) of the
   generation asset while that render runs: the run gets the GPU run tags from the run coordinator and
   waits QUEUED behind the `musicgen/gpu` tag limit; it is then cancelled from the queue.
4. **A bulk run through the daemon.** `musicgen-pipeline render --detach --wait A.json B.json`, as an
   operator runs it (`RUN_QUEUE=auto` finds the live daemon): the bulk run joins the daemon's queue as a
   range run over both partitions and succeeds; the sensor `render_after_bulk` then launches one render
   run per request (tag `musicgen/bulk_run`, the tags of every render of that request), both succeed,
   each soundtrack lasts what its request asks, and `--wait` prints each run id and report, exit 0.
Figures (seconds) are printed at the end (`pytest -s`). Everything started is stopped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import dagster as dg
import pytest

from musicgen_pipeline import gpu_runs, run_health
from musicgen_pipeline.naming import (
    BULK_JOB,
    BULK_KEYS_TAG,
    BULK_RUN_TAG,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    run_tags,
)
from musicgen_pipeline.request import parse_request
from musicgen_pipeline_tests.deploy import postgres
from musicgen_pipeline_tests.deploy.services import ROOT, Topology, dagster_topology, tool, wait_for

pytestmark = [
    pytest.mark.live,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(postgres.missing_reason() is not None, reason=str(postgres.missing_reason())),
]

RUN_TIMEOUT = 900.0  # one tiny-random render on a loaded 2-core machine (about 1-6 min seen)
BULK_TIMEOUT = 1200.0  # a bulk run and its two renders, one GPU run at a time (about 3 min seen)
DEAD_RUN_BOUND = 60.0  # poll_interval_seconds (5) + daemon tick + free_slots_after_run_end_seconds (5)
RENDER_JOB = "render_soundtrack"


def request(seed: int) -> dict[str, Any]:
    """A small request: two 2 s scenes, no beat alignment, tempo matching or stem-aware crossfade."""
    return {
        "base_prompt": "calm piano with soft strings",
        "scenes": [{"mood": "morning", "duration": 2}, {"mood": "evening", "duration": 2}],
        "crossfade_duration": 0.5,
        "beat_aligned": False,
        "tempo_match": False,
        "stem_aware": False,
        "seed": seed,
        "model": "tiny-random",
    }


def drop(inbox: Path, name: str, content: str) -> Path:
    """The safe way to drop a request: write a *.tmp, then rename (the sensor skips *.tmp)."""
    inbox.mkdir(parents=True, exist_ok=True)
    tmp = inbox / f"{name}.tmp"
    tmp.write_text(content, encoding="utf-8")
    target = inbox / name
    tmp.rename(target)
    return target


def graphql(topology: Topology, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps({"query": query, "variables": variables}).encode()
    req = urllib.request.Request(
        topology.graphql_url, data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        answer = json.loads(resp.read())
    assert "errors" not in answer, answer
    return answer["data"]


LAUNCH = """
mutation Launch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}
"""


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Topology, dg.DagsterInstance, Path]]:
    root = tmp_path_factory.mktemp("live")
    home, data, logs = root / "dagster_home", root / "data", root / "logs"
    for folder in (home, data, logs):
        folder.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.prod.yaml", home / "dagster.yaml")
    with postgres.postgres_cluster() as cluster:
        env = {
            **os.environ,
            **cluster.env(),
            "DAGSTER_HOME": str(home),
            "MUSICGEN_DATA": str(data),
            "MUSICGEN_MODEL": "tiny-random",
            "DEMUCS_MODEL": "tiny-random",
            "USE_QUALITY_LOOP": "0",
            "SENSOR_SETTLE_SECONDS": "0",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        grpc_port, web_port = postgres.free_port(), postgres.free_port()
        with (
            mock.patch.dict(
                os.environ, {k: env[k] for k in (*cluster.env(), "DAGSTER_HOME", "MUSICGEN_DATA")}
            ),
            dagster_topology(env, logs, grpc_port, web_port) as topology,
            dg.DagsterInstance.from_config(str(home)) as instance,
        ):
            yield topology, instance, data


def runs_of(instance: dg.DagsterInstance, **tags: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(job_name=RENDER_JOB, tags=tags)))


def event_types(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [e.dagster_event.event_type_value for e in instance.all_logs(run_id) if e.dagster_event]


def step_started(instance: dg.DagsterInstance, run_id: str, step: str) -> bool:
    return any(
        e.dagster_event.event_type_value == "STEP_START" and e.dagster_event.step_key == step
        for e in instance.all_logs(run_id)
        if e.dagster_event
    )


def gpu_slots(instance: dg.DagsterInstance) -> tuple[int, set[str]]:
    info = instance.event_log_storage.get_concurrency_info(gpu_runs.GPU_POOL)
    return info.slot_count, info.active_run_ids


def test_one_host_topology_on_postgres(deployment) -> None:
    topology, instance, data = deployment
    inbox = data / "inbox"
    figures: dict[str, float | int | str] = {}
    t0 = time.monotonic()

    # 1. A run killed mid-generation is failed and its gpu slot freed.
    drop(inbox, "doomed.json", json.dumps(request(seed=11)))
    doomed = wait_for(
        lambda: next(iter(runs_of(instance, **{"musicgen/source": "doomed.json"})), None),
        300,
        "the inbox sensor to create the first run",
        topology,
    )
    wait_for(
        lambda: (
            step_started(instance, doomed.run_id, "scene_segments")
            and doomed.run_id in gpu_slots(instance)[1]
        ),
        RUN_TIMEOUT,
        "the first run's generation step to hold the gpu slot",
        topology,
        interval=0.5,
    )
    figures["run 1: drop to generation started (s)"] = round(time.monotonic() - t0, 1)
    run = instance.get_run_by_id(doomed.run_id)
    worker = run_health.worker_of(instance, run)
    assert worker is not None, "no worker recorded for the started run"
    assert run_health.is_alive(worker) is True
    os.kill(worker.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    figures["killed"] = f"run worker pid {worker.pid} (SIGKILL) in scene_segments, holding the gpu slot"

    failed = wait_for(
        lambda: (
            (r := instance.get_run_by_id(doomed.run_id)) is not None
            and r.status == dg.DagsterRunStatus.FAILURE
            and r
        ),
        DEAD_RUN_BOUND,
        "the killed run to be marked FAILURE",
        topology,
        interval=0.5,
    )
    figures["run 1: SIGKILL to FAILURE (s)"] = round(time.monotonic() - killed_at, 1)
    wait_for(
        lambda: doomed.run_id not in gpu_slots(instance)[1],
        DEAD_RUN_BOUND,
        "the killed run's gpu slot to be freed",
        topology,
        interval=0.5,
    )
    figures["run 1: SIGKILL to gpu slot free (s)"] = round(time.monotonic() - killed_at, 1)
    assert failed.status == dg.DagsterRunStatus.FAILURE

    # 2. The inbox through the queue: one bad file (rejected with its reason), one good one (renders).
    t1 = time.monotonic()
    drop(inbox, "bad.json", json.dumps({**request(seed=12), "scenes": [{"mood": "x", "duration": 99999}]}))
    drop(inbox, "good.json", json.dumps(request(seed=13)))
    rejected = wait_for(
        lambda: (inbox / "rejected" / "bad.error.json").exists() and inbox / "rejected" / "bad.error.json",
        300,
        "bad.json to be rejected",
        topology,
    )
    reason = json.loads(rejected.read_text(encoding="utf-8"))
    assert "duration" in json.dumps(reason)
    assert (inbox / "rejected" / "bad.json").exists()  # moved aside, never deleted
    figures["bad file: drop to rejected (s)"] = round(time.monotonic() - t1, 1)
    good = wait_for(
        lambda: next(iter(runs_of(instance, **{"musicgen/source": "good.json"})), None),
        300,
        "the inbox sensor to create the second run",
        topology,
    )
    assert (inbox / "accepted" / "good.json").exists()
    good = wait_for(
        lambda: (r := instance.get_run_by_id(good.run_id)).status != dg.DagsterRunStatus.NOT_STARTED and r,
        60,
        "the second run to be submitted",
        topology,
        interval=0.5,
    )
    assert good.tags[gpu_runs.GPU_RUN_TAG] == "1"
    assert gpu_runs.K8S_CONFIG_TAG in good.tags

    # 3. While it renders: a UI "Materialize" of the generation asset waits behind the GPU tag limit.
    key = good.tags["dagster/partition"]
    wait_for(
        lambda: instance.get_run_by_id(good.run_id).status == dg.DagsterRunStatus.STARTED,
        RUN_TIMEOUT,
        "the second run to start",
        topology,
    )
    launched = graphql(
        topology,
        LAUNCH,
        {
            "executionParams": {
                "selector": {
                    "repositoryLocationName": "musicgen_pipeline",
                    "repositoryName": "__repository__",
                    "pipelineName": "__ASSET_JOB",
                    "assetSelection": [{"path": ["scene_segments"]}],
                    "assetCheckSelection": [],
                },
                "mode": "default",
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": key}]},
                "runConfigData": {},
            }
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    ui_run_id = launched["run"]["runId"]
    ui_run = instance.get_run_by_id(ui_run_id)
    assert ui_run is not None and ui_run.job_name == "__ASSET_JOB"
    assert ui_run.tags[gpu_runs.GPU_RUN_TAG] == "1"
    assert json.loads(ui_run.tags[gpu_runs.K8S_CONFIG_TAG]) == gpu_runs.GPU_K8S_CONFIG
    time.sleep(6)  # three dequeue intervals: the tag limit (1 GPU run) keeps it queued
    if instance.get_run_by_id(good.run_id).status == dg.DagsterRunStatus.STARTED:
        assert instance.get_run_by_id(ui_run_id).status == dg.DagsterRunStatus.QUEUED
        figures["UI Materialize run"] = "tagged, held QUEUED by the musicgen/gpu limit, cancelled"
    assert instance.run_coordinator.cancel_run(ui_run_id) or instance.get_run_by_id(ui_run_id).is_finished

    done = wait_for(
        lambda: (r := instance.get_run_by_id(good.run_id)).is_finished and r,
        RUN_TIMEOUT,
        "the second run to finish",
        topology,
        interval=2.0,
    )
    assert done.status == dg.DagsterRunStatus.SUCCESS, topology.tails()
    figures["run 2: drop to SUCCESS (s)"] = round(time.monotonic() - t1, 1)
    kinds = event_types(instance, good.run_id)
    # Through the daemon's queue: enqueued at submission, launched (STARTING) by the daemon afterwards.
    assert "PIPELINE_ENQUEUED" in kinds
    assert (
        kinds.index("PIPELINE_ENQUEUED") < kinds.index("PIPELINE_STARTING") < kinds.index("PIPELINE_SUCCESS")
    )
    assert (data / "outputs" / key / "soundtrack.wav").exists()
    assert gpu_slots(instance)[1] == set()

    # 4. A bulk run of two requests through the daemon's queue, renders launched by render_after_bulk.
    bulk_step(topology, instance, data, figures)
    figures["runs"] = len(list(instance.get_runs()))
    figures["total (s)"] = round(time.monotonic() - t0, 1)
    print("\nlive topology figures:")
    for name, value in figures.items():
        print(f"  {name}: {value}")


def wav_seconds(path: Path) -> float:
    import soundfile

    info = soundfile.info(str(path))
    return info.frames / info.samplerate


def bulk_step(
    topology: Topology, instance: dg.DagsterInstance, data: Path, figures: dict[str, float | int | str]
) -> None:
    """`render --detach --wait A.json B.json` against the deployment, as an operator runs it."""
    raws = {data.parent / f"bulk-{seed}.json": request(seed) for seed in (21, 22)}
    for path, raw in raws.items():
        path.write_text(json.dumps(raw), encoding="utf-8")
    requests = {str(path): parse_request(raw) for path, raw in raws.items()}
    keys = [r.partition_key() for r in requests.values()]
    out_path, err_path = topology.logs / "bulk-render.out", topology.logs / "bulk-render.err"
    t0 = time.monotonic()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [tool("musicgen-pipeline"), "render", "--detach", "--wait", *requests],
            cwd=str(ROOT),
            env=topology.env,  # RUN_QUEUE unset: auto, which must find the live daemon
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        try:
            wait_for(
                lambda: proc.poll() is not None,
                BULK_TIMEOUT,
                "render --detach --wait of the bulk to exit",
                topology,
                interval=2.0,
            )
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
    figures["bulk: render --detach --wait, 2 requests (s)"] = round(time.monotonic() - t0, 1)
    stdout = out_path.read_text(encoding="utf-8")
    stderr = err_path.read_text(encoding="utf-8")
    printed = f"stdout:\n{stdout}\nstderr:\n{stderr[-4000:]}\n{topology.tails()}"
    assert proc.returncode == 0, printed

    # The bulk run: a range run over both partitions, queued and dequeued by the daemon, SUCCESS.
    (bulk_id,) = re.findall(r"^bulk run (\S+) started", stdout, re.M)
    bulk = instance.get_run_record_by_id(bulk_id)
    assert bulk is not None, printed
    run = bulk.dagster_run
    assert run.job_name == BULK_JOB and run.status == dg.DagsterRunStatus.SUCCESS, printed
    assert run.tags[PARTITION_RANGE_START_TAG] == keys[0]
    assert run.tags[PARTITION_RANGE_END_TAG] == keys[1]
    assert run.tags[BULK_KEYS_TAG] == ",".join(keys)
    assert "dagster/partition" not in run.tags
    assert run.tags[gpu_runs.GPU_RUN_TAG] == "1"
    kinds = event_types(instance, bulk_id)
    assert "PIPELINE_ENQUEUED" in kinds, kinds  # auto chose the daemon's queue
    # Enqueued at submission, launched (STARTING) by the daemon afterwards (Dagster emits no DEQUEUED).
    assert (
        kinds.index("PIPELINE_ENQUEUED") < kinds.index("PIPELINE_STARTING") < kinds.index("PIPELINE_SUCCESS")
    )
    figures["bulk run: submitted to SUCCESS (s)"] = round(
        bulk.end_time - bulk.create_timestamp.timestamp(), 1
    )

    # One render run per request, launched by render_after_bulk after the bulk run ended, tagged as
    # every render of that request is, each SUCCESS.
    renders = {r.tags["dagster/partition"]: r for r in runs_of(instance, **{BULK_RUN_TAG: bulk_id})}
    assert sorted(renders) == sorted(keys), printed
    source = f"bulk run {bulk_id[:8]}"
    last_end = bulk.end_time
    for path, req in requests.items():
        key = req.partition_key()
        render = instance.get_run_record_by_id(renders[key].run_id)
        tags = render.dagster_run.tags
        assert tags.get("dagster/sensor_name") == "render_after_bulk", tags
        assert tags.get("dagster/run_key") == f"{bulk_id}:{key}"
        expected = run_tags(req, source=source, bulk_run=bulk_id)
        assert {k: tags.get(k) for k in expected} == expected
        assert tags[gpu_runs.GPU_RUN_TAG] == "1"
        assert render.dagster_run.status == dg.DagsterRunStatus.SUCCESS, printed
        assert render.create_timestamp.timestamp() >= bulk.end_time  # it followed the bulk run
        assert "PIPELINE_ENQUEUED" in event_types(instance, render.dagster_run.run_id)
        last_end = max(last_end, render.end_time)
        # Its scenes were generated by the bulk run (batched), none by its render run.
        generated = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("scene_generation"), asset_partitions=[key]), limit=1
        ).records[0]
        assert generated.run_id == bulk_id
        rows = generated.asset_materialization.metadata["rows_generated"].value
        assert rows == len(req.scenes) == len(list((data / "outputs" / key).rglob("attempt_*.json")))
        # The soundtrack of the requested length, and what --wait printed: its run id and report.
        wav = data / "outputs" / key / "soundtrack.wav"
        assert wav.exists(), printed
        assert abs(wav_seconds(wav) - req.expected_duration) <= req.duration_tolerance
        run_id = render.dagster_run.run_id
        assert re.search(rf"^run {run_id} started \({re.escape(path)}, partition {key};", stdout, re.M), (
            printed
        )
        report = stdout.split(f"== {path} (partition {key})\n", 1)
        assert len(report) == 2 and report[1].startswith(f"soundtrack: {wav}"), printed
    assert "bulk: 2 of 2 rendered" in stderr, printed
    figures["bulk: bulk run SUCCESS to last render SUCCESS (s)"] = round(last_end - bulk.end_time, 1)
    figures["bulk: runs"] = f"1 bulk ({bulk_id[:8]}) + {len(renders)} renders by render_after_bulk"
