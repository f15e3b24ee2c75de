"""Which partitions share a bulk run. Plain Python (no Dagster).

A bulk run is one Dagster run over a *range* of soundtrack partitions (the run tags Dagster's own
single_run/multi_run backfills use), and a range is contiguous in the order the partitions were
*added* (not alphabetical). So a set of partitions to render in bulk is cut into chunks that are

- contiguous in that order (a gap, e.g. a partition added in between by someone else, starts a new
  chunk: a range would otherwise include a partition nobody asked for);
- of one model (every row of a batched MusicGen call runs the same weights);
- at most `max_batch` partitions (MUSICGEN_MAX_BATCH: more than that would be chunked by the model
  anyway, and a smaller bulk fails and re-executes in smaller pieces).

Launchers that add the partitions themselves (`render A.json B.json`, the inbox sensor, the catalogue
schedule) add them grouped by model (`order_by_model`), so each model's new partitions are contiguous.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from musicgen_pipeline.naming import BULK_KEYS_TAG, PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG


def order_by_model(keys: Iterable[str], model_of: dict[str, str]) -> list[str]:
    """`keys` without duplicates, grouped by model (models in order of first appearance, keys keep
    their order within a model): the order to add new partitions in, so each model's are contiguous."""
    unique = list(dict.fromkeys(keys))
    first_seen = {model: i for i, model in reversed(list(enumerate(model_of[k] for k in unique)))}
    return sorted(unique, key=lambda k: first_seen[model_of[k]])


def bulk_chunks(
    order: Sequence[str], keys: Iterable[str], model_of: dict[str, str], max_batch: int
) -> list[list[str]]:
    """`keys` cut into bulk runs: each a contiguous stretch of `order` (the partitions in insertion
    order), one model, at most `max_batch` keys; chunks follow `order`.

    A key missing from `order` is an error (it has no partition, so no range can hold it).
    """
    if max_batch < 1:
        raise ValueError(f"max_batch={max_batch}: must be at least 1")
    wanted = set(keys)
    position = {key: i for i, key in enumerate(order)}
    missing = sorted(wanted - position.keys())
    if missing:
        raise ValueError(f"not partitions of the bulk's partition set: {', '.join(missing)}")
    chunks: list[list[str]] = []
    for key in sorted(wanted, key=position.__getitem__):
        last = chunks[-1] if chunks else None
        if (
            last is not None
            and position[key] == position[last[-1]] + 1
            and model_of[key] == model_of[last[0]]
            and len(last) < max_batch
        ):
            last.append(key)
        else:
            chunks.append([key])
    return chunks


def format_keys(keys: Sequence[str]) -> str:
    """The value of a bulk run's keys tag (partition keys never contain commas)."""
    return ",".join(keys)


def parse_keys(text: str | None) -> list[str]:
    return [k for k in (text or "").split(",") if k]


def bulk_tags(keys: Sequence[str]) -> dict[str, str]:
    """Tags of a bulk run over `keys` (one chunk of `bulk_chunks`): Dagster's partition-range tags plus
    the keys themselves (what the render runs that follow it render)."""
    return {
        PARTITION_RANGE_START_TAG: keys[0],
        PARTITION_RANGE_END_TAG: keys[-1],
        BULK_KEYS_TAG: format_keys(keys),
    }


def keys_of_run(tags: dict[str, str], order: Sequence[str]) -> list[str]:
    """The partitions a bulk run covered: its keys tag, else its range in `order` (a run launched
    another way, e.g. from the launchpad with a range), else its single partition."""
    listed = parse_keys(tags.get(BULK_KEYS_TAG))
    if listed:
        return listed
    start, end = tags.get(PARTITION_RANGE_START_TAG), tags.get(PARTITION_RANGE_END_TAG)
    if start in order and end in order:
        return list(order[order.index(start) : order.index(end) + 1])
    single = tags.get("dagster/partition")
    return [single] if single else []
