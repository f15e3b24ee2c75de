"""What Dagster 1.13 does with several partitions of a *dynamic* partition set in one run.

Bulk rendering builds on these facts, so they are checked here against the installed Dagster rather
than assumed (toy assets, an ephemeral instance; no models):

1. A run tagged with a partition *range* (`dagster/asset_partition_range_start/end`, what a backfill
   with `BackfillPolicy.single_run()` launches) executes a partitioned asset's step **once**, and
   `context.partition_keys` lists the range's keys in the order the partitions were added.
2. That one step records one materialization **per partition**, each with its own metadata when the
   step calls `context.add_asset_metadata(..., partition_key=key)`.
3. A backfill over a selection of partitions becomes one run per *contiguous* range of that order
   (`single_run`), or chunks of at most N partitions (`multi_run(N)`); assets with another policy
   (none = one run per partition) are requested in runs of their own.
4. The stock `FilesystemIOManager` refuses to store one output for several partitions.
5. A step fails as a whole: there is no per-partition failure inside one step.
"""

import dagster as dg
import pytest
from dagster._core.definitions.automation_tick_evaluation_context import (
    build_run_requests_with_backfill_policies,
)
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

requests = dg.DynamicPartitionsDefinition(name="toy_requests")
CALLS: list[list[str]] = []


@dg.asset(partitions_def=requests, backfill_policy=dg.BackfillPolicy.single_run())
def bulk_step(context: dg.AssetExecutionContext) -> None:
    CALLS.append(list(context.partition_keys))
    for i, key in enumerate(context.partition_keys):
        context.add_asset_metadata({"row": i, "batch": len(context.partition_keys)}, partition_key=key)


@dg.asset(partitions_def=requests, deps=[bulk_step])
def per_request(context: dg.AssetExecutionContext) -> None:
    context.add_output_metadata({"key": context.partition_key})


@dg.asset(partitions_def=requests, backfill_policy=dg.BackfillPolicy.single_run())
def returns_a_value(context: dg.AssetExecutionContext) -> int:
    return len(context.partition_keys)


@dg.asset(partitions_def=requests, backfill_policy=dg.BackfillPolicy.single_run())
def fails_for_one(context: dg.AssetExecutionContext) -> None:
    if "c" in context.partition_keys:
        raise ValueError("request c is broken")


def _latest(instance: dg.DagsterInstance, asset: str, key: str) -> dg.EventLogRecord | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]), limit=1
    ).records
    return records[0] if records else None


def _range(start: str, end: str) -> dict[str, str]:
    return {ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end}


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        # insertion order, not alphabetical: the range follows it
        inst.add_dynamic_partitions(requests.name, ["b", "a", "c", "d", "e"])
        CALLS.clear()
        yield inst


def test_range_run_executes_the_step_once_with_every_key(instance):
    result = dg.materialize([bulk_step], instance=instance, tags=_range("a", "d"))
    assert result.success
    assert CALLS == [["a", "c", "d"]]  # one step, the range in insertion order ("b" is before "a")
    for i, key in enumerate(["a", "c", "d"]):
        record = _latest(instance, "bulk_step", key)
        assert record is not None and record.run_id == result.run_id
        metadata = record.asset_materialization.metadata
        assert metadata["row"].value == i and metadata["batch"].value == 3  # per-partition metadata
    for key in ["b", "e"]:
        assert _latest(instance, "bulk_step", key) is None
    # materialized partitions, as the UI's partition bar shows them
    assert set(instance.get_materialized_partitions(dg.AssetKey("bulk_step"))) == {"a", "c", "d"}


def test_backfill_selection_becomes_runs_per_contiguous_range_and_policy(instance):
    graph = dg.Definitions(assets=[bulk_step, per_request]).resolve_asset_graph()

    def runs(keys: list[str], assets: list[str]) -> list[tuple[tuple[str, ...], str | None, str | None]]:
        selection = [AssetKeyPartitionKey(dg.AssetKey(a), k) for a in assets for k in keys]
        with partition_loading_context(dynamic_partitions_store=instance):
            out = build_run_requests_with_backfill_policies(selection, graph, instance)
        return sorted(
            (
                tuple(sorted(k.to_user_string() for k in r.asset_selection or [])),
                r.tags.get(ASSET_PARTITION_RANGE_START_TAG) or r.partition_key,
                r.tags.get(ASSET_PARTITION_RANGE_END_TAG),
            )
            for r in out
        )

    # contiguous selection: one run; a gap (d not selected) splits it into two ranges
    assert runs(["a", "c", "d"], ["bulk_step"]) == [(("bulk_step",), "a", "d")]
    assert runs(["b", "c", "e"], ["bulk_step"]) == [(("bulk_step",), "b", "b"), (("bulk_step",), "c", "c"),
                                                    (("bulk_step",), "e", "e")]  # fmt: skip
    # the downstream asset without a policy: one run per partition, apart from the range run
    assert runs(["a", "c"], ["bulk_step", "per_request"]) == [
        (("bulk_step",), "a", "c"),
        (("per_request",), "a", None),
        (("per_request",), "c", None),
    ]


def test_multi_run_policy_chunks_a_range(instance):
    chunked = dg.asset(
        name="chunked", partitions_def=requests, backfill_policy=dg.BackfillPolicy.multi_run(2)
    )(lambda: None)
    graph = dg.Definitions(assets=[chunked]).resolve_asset_graph()
    selection = [AssetKeyPartitionKey(dg.AssetKey("chunked"), k) for k in ["b", "a", "c", "d", "e"]]
    with partition_loading_context(dynamic_partitions_store=instance):
        out = build_run_requests_with_backfill_policies(selection, graph, instance)
    ranges = sorted(
        (r.tags[ASSET_PARTITION_RANGE_START_TAG], r.tags[ASSET_PARTITION_RANGE_END_TAG]) for r in out
    )
    assert ranges == [("b", "a"), ("c", "d"), ("e", "e")]


def test_filesystem_io_manager_refuses_a_multi_partition_output(instance, tmp_path):
    with pytest.raises(Exception, match="does not support persisting an output associated with multiple"):
        dg.materialize(
            [returns_a_value],
            instance=instance,
            tags=_range("a", "c"),
            resources={"io_manager": dg.FilesystemIOManager(base_dir=str(tmp_path))},
        )


def test_a_failure_fails_every_partition_of_the_step(instance):
    result = dg.materialize([fails_for_one], instance=instance, tags=_range("a", "d"), raise_on_error=False)
    assert not result.success
    assert instance.get_materialized_partitions(dg.AssetKey("fails_for_one")) == set()
