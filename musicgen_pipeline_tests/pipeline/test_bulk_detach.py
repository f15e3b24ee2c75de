"""`musicgen-pipeline render --detach A.json B.json ...` without a Dagster daemon (this project's run
queue): one bulk run per chunk (MUSICGEN_MAX_BATCH) and each request's own render run, all ids printed
at once; a render run waits for its bulk run (queued with the bulk run's place in line, canceled with
it), and the bulk run's worker runs the renders after it, tagged as every render run of their request.
(With a daemon the sensors start the renders: `test_bulk_launch`.)"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from pathlib import Path

import dagster as dg
import pytest

from musicgen_pipeline import launch
from musicgen_pipeline.cli import main
from musicgen_pipeline.naming import (
    BULK_JOB,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    RENDER_JOB,
    run_tags,
)
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.request import parse_request
from musicgen_pipeline.run_health import WORKER_PID_TAG
from musicgen_pipeline_tests.pipeline.conftest import write_json
from musicgen_pipeline_tests.pipeline.test_run_queue import _dispatcher_pids, _launch_pids


def _raw(seed: int) -> dict[str, object]:
    return {
        "base_prompt": "soundtrack",
        "scenes": [{"mood": "calm", "duration": 1.5}, {"mood": "bright", "duration": 1.5}],
        "crossfade_duration": 0.5,
        "seed": seed,
        "model": "tiny-random",
        "stem_aware": False,
    }


def _one_run_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSICGEN_MODEL", "tiny-random")
    monkeypatch.setenv("RUN_QUEUE", "local")
    home = Path(os.environ["DAGSTER_HOME"])
    yaml = (home / "dagster.yaml").read_text(encoding="utf-8")
    (home / "dagster.yaml").write_text(yaml.replace("max_concurrent_runs: 4", "max_concurrent_runs: 1"))


def _started(out: str) -> tuple[list[str], list[tuple[str, str, str, str]]]:
    """(bulk run ids, (render run id, file, partition, bulk run id prefix) per request) as printed."""
    bulks = re.findall(r"^bulk run (\S+) started", out, re.M)
    renders = re.findall(r"^run (\S+) started \((\S+), partition (\S+); after bulk run (\w+)\)$", out, re.M)
    return bulks, renders


def _stop_launch_processes(data_dir: Path) -> None:
    for pid in _dispatcher_pids(data_dir) + _launch_pids(data_dir, BULK_JOB.encode()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_render_runs_wait_for_their_bulk_run_and_go_with_it(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _one_run_slot(monkeypatch)
    monkeypatch.setenv("MUSICGEN_MAX_BATCH", "2")
    files = [str(write_json(data_dir / f"r{s}.json", _raw(s))) for s in (1, 2, 3)]
    keys = [parse_request(_raw(s)).partition_key() for s in (1, 2, 3)]
    store = PartitionStore.for_data_dir(data_dir)
    with dg.DagsterInstance.get() as instance:
        queue = launch.run_queue(instance, store)
        held = queue.take_slot()  # the one run slot is busy: everything waits
        assert held is not None
        try:
            assert main(["render", "--detach", *files]) == 0
            bulks, renders = _started(capsys.readouterr().out)
            assert len(bulks) == 2  # 3 requests, at most 2 per bulk
            assert [(f, k) for _, f, k, _ in renders] == list(zip(files, keys, strict=True))
            assert [after for *_, after in renders] == [bulks[0][:8], bulks[0][:8], bulks[1][:8]]
            watcher = launch.RunWatcher(instance, store)
            assert [watcher.progress(b).queue_position for b in bulks] == [1, 2]  # type: ignore[union-attr]
            states = [watcher.progress(r) for r, *_ in renders]
            assert [(p.status, p.queue_position, p.partition) for p in states if p] == [
                ("queued", 1, keys[0]),
                ("queued", 1, keys[1]),
                ("queued", 2, keys[2]),
            ]
            # one render canceled while it waits: only it (its bulk worker will skip it)
            assert launch.cancel(instance, store, queue, renders[0][0], "test")
            assert watcher.progress(renders[0][0]).status == "canceled"  # type: ignore[union-attr]
            assert watcher.progress(renders[1][0]).status == "queued"  # type: ignore[union-attr]
            # a bulk run canceled: the render that follows it goes with it
            assert launch.cancel(instance, store, queue, bulks[1], "test")
            after = watcher.progress(renders[2][0])
            assert after is not None and after.status == "canceled" and bulks[1] in (after.error or "")
        finally:
            for run in queue.entries():
                queue.remove(run.run_id)
            _stop_launch_processes(data_dir)
            os.close(held)


@pytest.mark.slow
def test_render_detach_wait_renders_each_request_after_its_bulk_run_without_a_daemon(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _one_run_slot(monkeypatch)
    monkeypatch.setenv("STEM_SOURCE", "dsp")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the worker process, on a shared machine
    files = [str(write_json(data_dir / f"r{s}.json", _raw(s))) for s in (1, 2)]
    requests = [parse_request(_raw(s)) for s in (1, 2)]
    keys = [r.partition_key() for r in requests]
    store = PartitionStore.for_data_dir(data_dir)
    try:
        code = main(["render", "--detach", "--wait", *files])
        out = capsys.readouterr().out
        assert code == 0, out
    finally:
        _stop_launch_processes(data_dir)
    (bulk_id,), renders = _started(out)
    assert [k for _, _, k, _ in renders] == keys
    sections = out.split("== ")[1:]
    assert [s.split(" ", 1)[0] for s in sections] == files
    assert all("soundtrack:" in s for s in sections)
    with dg.DagsterInstance.get() as instance:
        bulk = instance.get_run_by_id(bulk_id)
        assert bulk is not None and bulk.job_name == BULK_JOB and bulk.status == dg.DagsterRunStatus.SUCCESS
        for (render_id, _, key, _), request in zip(renders, requests, strict=True):
            run = instance.get_run_by_id(render_id)
            assert (
                run is not None and run.job_name == RENDER_JOB and run.status == dg.DagsterRunStatus.SUCCESS
            )
            assert run.tags["dagster/partition"] == key
            # the tags of every render run of this request (`render X.json`, the inbox), plus its bulk run
            assert run_tags(request, bulk_run=bulk_id).items() <= run.tags.items()
            assert run.tags[WORKER_PID_TAG] == bulk.tags[WORKER_PID_TAG]  # the bulk's worker, after it
            record = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("scene_generation"), asset_partitions=[key]),
                limit=1,
            ).records[0]
            assert record.run_id == bulk_id
            rows = record.asset_materialization.metadata["rows_generated"].value
            attempts = list(store.files(key).root.rglob("attempt_*.json"))
            assert (
                rows >= 2 and len(attempts) == rows
            )  # every attempt made by the bulk run, none by the render


def test_with_the_daemons_queue_the_bulk_run_is_queued_there_and_the_sensor_renders(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """RUN_QUEUE=dagster (what `auto` picks while a daemon runs the instance's queue): the bulk run joins
    Dagster's run queue as a range run (what the daemon launches, like a backfill's), and `render`
    says that `render_after_bulk` starts the renders (its run requests: `test_bulk_launch`)."""
    monkeypatch.setenv("MUSICGEN_MODEL", "tiny-random")
    monkeypatch.setenv("RUN_QUEUE", "dagster")
    files = [str(write_json(data_dir / f"r{s}.json", _raw(s))) for s in (1, 2)]
    keys = [parse_request(_raw(s)).partition_key() for s in (1, 2)]
    assert main(["render", "--detach", *files]) == 0
    out = capsys.readouterr().out
    (bulk_id,), renders = _started(out)
    assert renders == [] and "started by the sensor render_after_bulk" in out
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(bulk_id)
        assert run is not None and run.job_name == BULK_JOB and run.status == dg.DagsterRunStatus.QUEUED
        assert run.tags[PARTITION_RANGE_START_TAG] == keys[0] and run.tags[PARTITION_RANGE_END_TAG] == keys[1]
        assert "dagster/partition" not in run.tags
        instance.report_run_canceled(run)  # nothing is left queued


def test_wait_finds_the_render_runs_the_sensor_started(instance: dg.DagsterInstance) -> None:
    """`render --detach --wait` under a daemon: the render runs `render_after_bulk` started are found
    by their bulk-run tag (one per partition), and a partition without one is left out after the wait."""
    from musicgen_pipeline.commands.render import _sensor_renders
    from musicgen_pipeline.naming import BULK_RUN_TAG

    for run_id, key, bulk in (("r1", "k1", "b1"), ("r2", "k2", "b1"), ("r3", "k1", "other")):
        tags = {BULK_RUN_TAG: bulk, "dagster/partition": key}
        instance.add_run(dg.DagsterRun(job_name=RENDER_JOB, run_id=run_id, tags=tags))
    assert _sensor_renders(instance, "b1", ["k1", "k2"], timeout=0) == {"k1": "r1", "k2": "r2"}
    assert _sensor_renders(instance, "b1", ["k1", "k3"], timeout=0) == {"k1": "r1"}
