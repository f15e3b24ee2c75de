"""Who shares a bulk run: chunks contiguous in the partitions' insertion order, one model, at most the
batch limit; the inbox sensor's grouping of one tick (mixed models split, lone requests stay single
runs); the partitions a finished bulk run hands to the renders that follow it. No models run here."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import pytest

from musicgen_pipeline.bulk_plan import bulk_chunks, bulk_tags, keys_of_run, order_by_model, parse_keys
from musicgen_pipeline.defs.sensors import build_inbox_sensor, build_render_after_bulk_sensor
from musicgen_pipeline.inbox import _run_request
from musicgen_pipeline.instance import register_request
from musicgen_pipeline.naming import (
    BULK_JOB,
    BULK_KEYS_TAG,
    BULK_RUN_TAG,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    PARTITIONS_NAME,
    RENDER_JOB,
    RUN_KEY_TAG,
    SCENES_TAG,
    SOURCE_TAG,
)
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.request import parse_request
from musicgen_pipeline.resources import SettingsResource
from musicgen_pipeline_tests.pipeline.conftest import three_scene_request, write_json


def test_chunks_are_contiguous_one_model_and_bounded() -> None:
    order = ["a", "b", "x", "c", "d", "e", "f", "g"]
    model = {"a": "m1", "b": "m1", "c": "m1", "d": "m2", "e": "m2", "f": "m2", "g": "m2", "x": "m1"}
    # x sits between b and c but is not asked for: the range stops at the gap
    assert bulk_chunks(order, ["g", "a", "b", "c", "d", "e", "f"], model, 2) == [
        ["a", "b"],
        ["c"],
        ["d", "e"],
        ["f", "g"],
    ]
    assert bulk_chunks(order, ["a", "b", "x", "c"], model, 8) == [["a", "b", "x", "c"]]
    with pytest.raises(ValueError, match="not partitions"):
        bulk_chunks(order, ["zz"], model, 8)
    with pytest.raises(ValueError, match="max_batch=0"):
        bulk_chunks(order, ["a"], model, 0)


def test_order_by_model_groups_models_in_first_seen_order() -> None:
    model = {"a": "m1", "b": "m2", "c": "m1", "d": "m3", "e": "m2"}
    assert order_by_model(["a", "b", "c", "d", "e", "a"], model) == ["a", "c", "b", "e", "d"]


def test_keys_of_a_bulk_run() -> None:
    order = ["p", "q", "r", "s"]
    assert keys_of_run(bulk_tags(["q", "r"]), order) == ["q", "r"]
    ranged = {PARTITION_RANGE_START_TAG: "q", PARTITION_RANGE_END_TAG: "s"}  # launched without the keys tag
    assert keys_of_run(ranged, order) == ["q", "r", "s"]
    assert keys_of_run({"dagster/partition": "p"}, order) == ["p"]


def _age_all(folder: Path) -> None:
    past = time.time() - 60
    for path in folder.iterdir():
        os.utime(path, (past, past))


def test_inbox_tick_splits_models_and_chunks_at_the_batch_limit(
    instance: dg.DagsterInstance, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENSOR_SETTLE_SECONDS", "0")
    monkeypatch.setenv("MUSICGEN_MAX_BATCH", "2")
    inbox = data_dir / "inbox"
    small = [three_scene_request(seed=s) for s in (1, 2, 3)]
    melody = [three_scene_request(seed=s, model="tiny-random-melody") for s in (4, 5)]
    for i, request in enumerate([small[0], melody[0], small[1], melody[1], small[2]]):
        write_json(inbox / f"r{i}.json", request)
    _age_all(inbox)
    sensor = build_inbox_sensor(dg.define_asset_job(RENDER_JOB), dg.define_asset_job(BULK_JOB))
    context = dg.build_sensor_context(instance=instance, resources={"settings": SettingsResource()})
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    (added,) = result.dynamic_partitions_requests
    instance.add_dynamic_partitions(PARTITIONS_NAME, list(added.partition_keys))

    key = {id(r): parse_request(r).partition_key() for r in small + melody}
    small_keys, melody_keys = [key[id(r)] for r in small], [key[id(r)] for r in melody]
    bulks = [parse_keys(r.tags[BULK_KEYS_TAG]) for r in result.run_requests if r.job_name == BULK_JOB]
    singles = [r.partition_key for r in result.run_requests if r.job_name == RENDER_JOB]
    # models never share a bulk; at most 2 per bulk; the leftover small request renders alone
    assert bulks == [small_keys[:2], melody_keys] and singles == [small_keys[2]]
    order = instance.get_dynamic_partitions(PARTITIONS_NAME)
    for keys in bulks:  # each bulk is a contiguous range of the partitions as added
        assert order[order.index(keys[0]) : order.index(keys[-1]) + 1] == keys


def test_renders_follow_a_bulk_run_tagged_as_every_render_of_their_request(
    instance: dg.DagsterInstance, store: PartitionStore
) -> None:
    requests = [parse_request(three_scene_request(seed=s)) for s in (1, 2)]
    k1, k2 = (register_request(instance, store, r) for r in requests)
    instance.add_dynamic_partitions(PARTITIONS_NAME, ["k3"])
    sensor = build_render_after_bulk_sensor(dg.define_asset_job(RENDER_JOB), dg.DagsterRunStatus.SUCCESS)

    def requests_after(job_name: str, tags: dict[str, str]) -> list[dg.RunRequest] | dg.SkipReason:
        run = dg.DagsterRun(job_name=job_name, run_id=f"run-{job_name}", tags=tags)
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_instance=instance,
            dagster_run=run,
            dagster_event=dg.DagsterEvent(event_type_value="PIPELINE_SUCCESS", job_name=job_name),
            resources={"settings": SettingsResource()},
        )
        return sensor(context)

    requested = requests_after(BULK_JOB, bulk_tags([k1, k2]))
    assert [(r.partition_key, r.job_name, r.run_key) for r in requested] == [
        (k1, RENDER_JOB, f"run-bulk_generation:{k1}"),
        (k2, RENDER_JOB, f"run-bulk_generation:{k2}"),
    ]
    # the tags an inbox-launched render run of the same request carries, plus the bulk run it follows
    for run_request, request in zip(requested, requests, strict=True):
        inbox_tags = _run_request(request, request.partition_key(), "r.json").tags
        assert run_request.tags[BULK_RUN_TAG] == "run-bulk_generation"
        assert {k: v for k, v in run_request.tags.items() if k != BULK_RUN_TAG}.keys() == inbox_tags.keys()
        assert run_request.tags[RUN_KEY_TAG] == inbox_tags[RUN_KEY_TAG] == request.content_hash()[:16]
        assert run_request.tags[SCENES_TAG] == inbox_tags[SCENES_TAG] == "3"
        assert run_request.tags[SOURCE_TAG] == "bulk run run-bulk"
    assert isinstance(requests_after(RENDER_JOB, {"dagster/partition": "k3"}), dg.SkipReason)


def test_ui_backfill_over_selected_partitions_batches_generation(instance: dg.DagsterInstance) -> None:
    """The UI path: select scene_generation and the soundtrack assets, pick partitions, "Launch backfill".
    What the backfill daemon launches (Dagster's own planning, on this code location's asset graph):
    scene_generation as one range run per contiguous stretch of at most 8 partitions (its multi_run
    policy), every other asset in runs of one partition."""
    from dagster._core.definitions.automation_tick_evaluation_context import (
        build_run_requests_with_backfill_policies,
    )
    from dagster._core.definitions.events import AssetKeyPartitionKey
    from dagster._core.definitions.partitions.context import partition_loading_context

    from musicgen_pipeline.definitions import defs

    keys = [f"k{i}" for i in range(10)]
    instance.add_dynamic_partitions(PARTITIONS_NAME, keys)
    graph = defs.resolve_asset_graph()
    assets = [dg.AssetKey("scene_generation"), *[k for k in graph.materializable_asset_keys if k.path[0] in (
        "soundtrack_request", "scene_segments", "beat_grids", "transition_report")]]  # fmt: skip
    selected = [k for k in keys if k != "k5"]  # a gap: k5 not selected
    selection = [AssetKeyPartitionKey(a, k) for a in assets for k in selected]
    with partition_loading_context(dynamic_partitions_store=instance):
        runs = build_run_requests_with_backfill_policies(selection, graph, instance)
    ranges = sorted(
        (r.tags[PARTITION_RANGE_START_TAG], r.tags[PARTITION_RANGE_END_TAG])
        for r in runs
        if set(r.asset_selection or ()) == {dg.AssetKey("scene_generation")}
    )
    assert ranges == [("k0", "k4"), ("k6", "k9")]  # contiguous stretches, each one batched step
    others = [r for r in runs if dg.AssetKey("scene_generation") not in set(r.asset_selection or ())]
    assert all(r.partition_key in selected for r in others)
    assert sorted({r.partition_key for r in others}) == sorted(selected)  # every partition, on its own
