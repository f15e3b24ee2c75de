from __future__ import annotations

import json
import os
import time
from pathlib import Path

import dagster as dg

from musicgen_pipeline import inbox as inbox_module
from musicgen_pipeline.bulk_plan import parse_keys
from musicgen_pipeline.defs.sensors import build_inbox_sensor
from musicgen_pipeline.inbox import cursor_text, cursor_time, process_inbox
from musicgen_pipeline.naming import (
    BULK_JOB,
    BULK_KEYS_TAG,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    PARTITIONS_NAME,
    RENDER_JOB,
)
from musicgen_pipeline.request import parse_request
from musicgen_pipeline.resources import SettingsResource
from musicgen_pipeline_tests.pipeline.conftest import three_scene_request, write_json


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def _tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"settings": SettingsResource()}
    )
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(PARTITIONS_NAME, list(request.partition_keys))
    return result


def test_inbox_folder_cases(instance: dg.DagsterInstance, data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("SENSOR_SETTLE_SECONDS", "5")
    inbox = data_dir / "inbox"
    good = write_json(inbox / "trip.json", three_scene_request())
    batch = write_json(
        inbox / "batch.json", {"requests": [three_scene_request(seed=1), three_scene_request(seed=2)]}
    )
    (inbox / "broken.json").write_text('{"base_prompt": "x", "scenes": [', encoding="utf-8")
    schema = write_json(
        inbox / "schema.json", {"base_prompt": "x", "scenes": [{"mood": "a", "duration": 9999}], "seed": "s"}
    )
    (inbox / "empty.json").write_text("", encoding="utf-8")
    for path in inbox.iterdir():
        _age(path, 60)
    writing = write_json(inbox / "writing.json", three_scene_request(seed=3))  # modified just now
    partial = write_json(inbox / "upload.json.tmp", three_scene_request(seed=4))
    _age(partial, 60)

    sensor = build_inbox_sensor(dg.define_asset_job(RENDER_JOB), dg.define_asset_job(BULK_JOB))
    first = _tick(sensor, instance, None)

    expected_keys = {
        parse_request(three_scene_request()).partition_key(),
        parse_request(three_scene_request(seed=1)).partition_key(),
        parse_request(three_scene_request(seed=2)).partition_key(),
    }
    # three new requests of one model: one bulk run over them, a contiguous range of the partitions
    (bulk,) = first.run_requests
    keys = parse_keys(bulk.tags[BULK_KEYS_TAG])
    assert bulk.job_name == BULK_JOB and bulk.partition_key is None and set(keys) == expected_keys
    assert instance.get_dynamic_partitions(PARTITIONS_NAME) == keys  # added in the bulk's order
    assert (bulk.tags[PARTITION_RANGE_START_TAG], bulk.tags[PARTITION_RANGE_END_TAG]) == (keys[0], keys[-1])
    assert "trip.json" in bulk.tags["musicgen/source"] and "batch.json" in bulk.tags["musicgen/source"]
    for key in expected_keys:
        stored = json.loads((data_dir / "outputs" / key / "request.json").read_text())
        assert stored["model"] == "tiny-random"

    assert sorted(p.name for p in (inbox / "accepted").iterdir()) == ["batch.json", "trip.json"]
    rejected = sorted(p.name for p in (inbox / "rejected").iterdir())
    assert rejected == sorted(
        [
            "broken.json",
            "broken.error.json",
            "schema.json",
            "schema.error.json",
            "empty.json",
            "empty.error.json",
        ]
    )
    schema_error = json.loads((inbox / "rejected" / "schema.error.json").read_text())
    fields = {p["field"]: p for p in schema_error["problems"]}
    assert fields["scenes[0].duration"]["value"] == 9999 and "600" in fields["scenes[0].duration"]["problem"]
    assert "seed" in fields
    assert "not valid JSON" in json.loads((inbox / "rejected" / "broken.error.json").read_text())["error"]
    assert "empty" in json.loads((inbox / "rejected" / "empty.error.json").read_text())["error"]
    assert writing.exists() and partial.exists()  # left alone
    assert not good.exists() and not batch.exists() and not schema.exists()

    second = _tick(sensor, instance, first.cursor)
    assert second.run_requests == []
    assert "still being written" in second.skip_reason.skip_message
    assert set(instance.get_dynamic_partitions(PARTITIONS_NAME)) == expected_keys

    _age(writing, 60)  # the writer finished
    third = _tick(sensor, instance, second.cursor)
    # a lone new request: a render run of its own, keyed by its partition
    assert [(r.partition_key, r.run_key, r.job_name) for r in third.run_requests] == [
        (parse_request(three_scene_request(seed=3)).partition_key(),) * 2 + (RENDER_JOB,)
    ]


def test_batch_limit_and_crash_recovery(instance: dg.DagsterInstance, data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("SENSOR_SETTLE_SECONDS", "0")
    inbox = data_dir / "inbox"
    for i in range(5):
        path = write_json(inbox / f"r{i}.json", three_scene_request(seed=100 + i))
        _age(path, 100 - i)  # r0 oldest
    tick1 = process_inbox(data_dir, 0.0, max_batch=2, settle_seconds=0)
    assert [r.tags["musicgen/source"] for r in tick1.run_requests] == ["r0.json", "r1.json"]
    # The tick "crashed" before Dagster stored its cursor: the next tick starts from the old cursor and
    # emits the moved files again (same run keys, so Dagster launches nothing twice) plus the next batch.
    tick2 = process_inbox(data_dir, 0.0, max_batch=2, settle_seconds=0)
    assert [r.tags["musicgen/source"] for r in tick2.run_requests] == [
        "r0.json",
        "r1.json",
        "r2.json",
        "r3.json",
    ]
    assert [r.run_key for r in tick2.run_requests[:2]] == [r.run_key for r in tick1.run_requests]
    tick3 = process_inbox(data_dir, tick2.cursor, max_batch=2, settle_seconds=0)
    assert [r.tags["musicgen/source"] for r in tick3.run_requests] == ["r4.json"]
    tick4 = process_inbox(data_dir, tick3.cursor, max_batch=2, settle_seconds=0)
    assert tick4.run_requests == [] and tick4.skip_reason
    assert len(list((inbox / "accepted").iterdir())) == 5


def test_same_name_twice_is_kept_not_overwritten(instance: dg.DagsterInstance, data_dir: Path) -> None:
    inbox = data_dir / "inbox"
    write_json(inbox / "a.json", three_scene_request(seed=1))
    tick = process_inbox(data_dir, 0.0, max_batch=5, settle_seconds=0)
    write_json(inbox / "a.json", three_scene_request(seed=2))
    tick = process_inbox(data_dir, tick.cursor, max_batch=5, settle_seconds=0)
    assert len(tick.run_requests) == 1
    assert sorted(p.name for p in (inbox / "accepted").iterdir()) == ["a-1.json", "a.json"]


def test_unreadable_file_is_left_in_place(instance: dg.DagsterInstance, data_dir: Path, monkeypatch) -> None:
    inbox = data_dir / "inbox"
    locked = write_json(inbox / "locked.json", three_scene_request())
    real_read = inbox_module.read_document_bytes

    def read(path: Path) -> bytes:
        if path.name == "locked.json":
            raise PermissionError(13, "Permission denied")
        return real_read(path)

    monkeypatch.setattr(inbox_module, "read_document_bytes", read)
    tick = process_inbox(data_dir, 0.0, max_batch=5, settle_seconds=0)
    assert tick.run_requests == [] and "locked.json (Permission denied)" in tick.skip_reason
    assert locked.exists() and not (inbox / "rejected").exists()


def test_tick_says_what_it_did_and_the_cursor_reads_as_a_time(
    instance: dg.DagsterInstance, data_dir: Path, monkeypatch
) -> None:
    monkeypatch.setenv("SENSOR_SETTLE_SECONDS", "0")
    inbox = data_dir / "inbox"
    write_json(inbox / "long.json", {"base_prompt": "x", "scenes": [{"mood": "a", "duration": 9999}]})
    sensor = build_inbox_sensor(dg.define_asset_job(RENDER_JOB), dg.define_asset_job(BULK_JOB))
    idle = _tick(sensor, instance, None)
    # Nothing launched: the tick's skip reason names the rejected file and its first problem.
    assert idle.run_requests == [] and idle.cursor == ""
    assert "rejected long.json: scenes[0].duration=9999:" in idle.skip_reason.skip_message
    assert "600" in idle.skip_reason.skip_message

    write_json(inbox / "trip.json", three_scene_request())
    write_json(inbox / "bad.json", {"base_prompt": "", "scenes": []})
    before = time.time()
    tick = process_inbox(data_dir, 0.0, max_batch=5, settle_seconds=0)
    assert [p.name for p in tick.accepted] == ["trip.json"] and [p.name for p in tick.rejected] == [
        "bad.json"
    ]
    assert tick.outcome.startswith("accepted trip.json (1 run request(s)); rejected bad.json: ")
    assert tick.reasons["bad.json"] in tick.outcome

    # The cursor a person reads is a UTC time; it reads back (rounded up to the next microsecond, so
    # the accepted file is not taken again) and old numeric cursors are still understood.
    text = cursor_text(tick.cursor)
    assert text.endswith("+00:00") and text.startswith(time.strftime("%Y-%m-%dT", time.gmtime(before)))
    assert 0 < cursor_time(text) - tick.cursor <= 2e-6
    assert cursor_time(repr(tick.cursor)) == tick.cursor and cursor_time("") == 0.0
    again = process_inbox(data_dir, cursor_time(text), max_batch=5, settle_seconds=0)
    assert again.run_requests == []
