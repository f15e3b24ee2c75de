"""Retention and disk space: the cleanup removes expired uploads/fetched inputs (and, opt-in, outputs)
and never a queued or running job's files; a job does not start without MIN_FREE_DISK_MB free, and a
disk that fills during a run fails it in words with no partial file left."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from musicgen_pipeline.cli import main
from musicgen_pipeline.defs.retention import active_partition_keys, cleanup_files
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.request import parse_request
from musicgen_pipeline.resources import SettingsResource
from musicgen_pipeline.retention import RetentionPolicy, cleanup
from musicgen_pipeline_tests.pipeline.conftest import three_scene_request, write_json

DAY = 86_400.0


def _old(path: Path, age: float = 2 * DAY) -> Path:
    past = time.time() - age
    os.utime(path, (past, past), follow_symlinks=False)
    return path


def _file(path: Path, size: int = 1000, age: float = 2 * DAY) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    return _old(path, age)


def test_cleanup_removes_expired_files_and_keeps_what_active_jobs_use(data_dir: Path, tmp_path: Path) -> None:
    store = PartitionStore.for_data_dir(data_dir)
    uploads = data_dir / "uploads"
    expired = _file(uploads / "11111111-done.wav")
    in_separation = _file(uploads / "22222222-running.wav")
    melody = _file(uploads / "33333333-melody.wav")
    fresh = _file(uploads / "44444444-fresh.wav", age=60)
    temp = _file(uploads / ".upload-abc123")
    outside = _file(tmp_path / "outside.wav")
    (uploads / "link.wav").symlink_to(outside)
    _old(uploads / "link.wav")

    store.write_separation_request("sep-running", in_separation, 4)
    running = parse_request({**three_scene_request(), "name": "with melody"})
    key = store.save_request(running)
    (store.files(key).request).write_text(
        json.dumps({**running.to_dict(), "melody": str(melody)}), encoding="utf-8"
    )
    done = store.save_request(parse_request(three_scene_request(seed=2)))
    for folder in (store.files("sep-running").root, store.files(key).root, store.files(done).root):
        for path in [*folder.rglob("*"), folder]:
            _old(path, 40 * DAY)
    active = {"sep-running", key}

    kept_outputs = cleanup(data_dir, RetentionPolicy(upload_max_age_seconds=DAY), active)
    assert sorted(p.name for p in kept_outputs.removed) == [".upload-abc123", "11111111-done.wav", "link.wav"]
    assert outside.exists() and in_separation.exists() and melody.exists() and fresh.exists()
    assert not expired.exists() and not temp.exists()
    assert {p.name for p in kept_outputs.kept_in_use} == {in_separation.name, melody.name}
    assert store.files(done).root.exists()  # outputs are kept unless RETENTION_OUTPUT_DAYS is set

    pickles = data_dir / "dagster_storage"
    done_pickle, kept_pickle = _file(pickles / "soundtrack" / done), _file(pickles / "soundtrack" / key)
    report = cleanup(
        data_dir,
        RetentionPolicy(DAY, output_max_age_seconds=30 * DAY),
        active,
        asset_storage_dir=pickles,
    )
    assert [p.name for p in report.removed] == [done, done]  # the outputs folder, then its pickle
    assert not done_pickle.exists() and kept_pickle.exists()
    assert store.files(key).root.exists() and store.files("sep-running").root.exists()
    assert report.freed_bytes > 0


def test_cleanup_job_on_the_instance(instance: dg.DagsterInstance, data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("RETENTION_UPLOAD_HOURS", "1")
    expired = _file(data_dir / "uploads" / "old.wav")
    kept = _file(data_dir / "uploads" / "in-use.wav")
    store = PartitionStore.for_data_dir(data_dir)
    store.write_separation_request("sep-live", kept, 2)
    run = instance.create_run_for_job(
        cleanup_files, status=dg.DagsterRunStatus.STARTED, tags={"dagster/partition": "sep-live"}
    )
    assert active_partition_keys(instance) == {"sep-live"}
    result = cleanup_files.execute_in_process(instance=instance, resources={"settings": SettingsResource()})
    assert result.success
    assert not expired.exists() and kept.exists()
    instance.report_run_failed(run)
    assert active_partition_keys(instance) == set()


def test_no_job_starts_without_free_disk_space(
    instance: dg.DagsterInstance, data_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("MIN_FREE_DISK_MB", "1e12")  # more than any disk
    request = write_json(tmp_path / "r.json", three_scene_request())
    code = main(["render", str(request)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "not started" in err and "below MIN_FREE_DISK_MB=1e+12 MB" in err
    assert not (data_dir / "outputs").exists()  # nothing registered, nothing half-written


@pytest.fixture
def full_outputs(data_dir: Path) -> Iterator[Path]:
    """`outputs/` on a 96 kB tmpfs: the first segment does not fit (skipped where mount is refused)."""
    outputs = data_dir / "outputs"
    outputs.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(outputs)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield outputs
    finally:
        subprocess.run(["umount", str(outputs)], check=True)


@pytest.mark.slow
def test_disk_full_during_a_run_names_the_cause_and_leaves_no_part_file(
    instance: dg.DagsterInstance, full_outputs: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("MUSICGEN_MODEL", "tiny-random")
    monkeypatch.setenv("USE_QUALITY_LOOP", "false")
    monkeypatch.setenv("MIN_FREE_DISK_MB", "0")
    request = write_json(tmp_path / "r.json", {"prompt": "calm piano", "duration": 1, "stem_aware": False})
    code = main(["render", str(request)])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1
    assert "no space left on device" in last and "System error" not in last, last
    assert [p for p in full_outputs.rglob("*") if ".part" in p.name] == []
