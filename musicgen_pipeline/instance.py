"""The Dagster instance: its home, the configuration this project ships, and the `gpu` pool.

- `dagster_home(data_dir)`: ``$DAGSTER_HOME``, or ``<data_dir>/dagster_home`` when unset (exported into
  the environment so child processes and Dagster itself find it), created with the shipped
  configuration when it has none.
- `instance_yaml()`: the shipped ``dagster.yaml`` (package data: ``musicgen_pipeline/dagster.yaml``,
  the one copy; the Docker image and the README use the same file).
- `get_instance(data_dir)`: the configured instance, with the `gpu` pool's slots created.
- `ensure_pools(instance)`: create the `gpu` pool before any run claims it.
- `register_request(instance, store, request)`: store ``outputs/<key>/request.json`` and add the
  dynamic partition ``<key>`` (idempotent: same content => same key, nothing duplicated).
"""

from __future__ import annotations

import os
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from musicgen_pipeline.gpu_runs import GPU_POOL
from musicgen_pipeline.naming import PARTITIONS_NAME
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.request import SoundtrackRequest

if TYPE_CHECKING:
    import dagster as dg


@cache
def instance_yaml() -> str:
    """The instance configuration this project ships (``musicgen_pipeline/dagster.yaml``)."""
    return files("musicgen_pipeline").joinpath("dagster.yaml").read_text(encoding="utf-8")


def dagster_home(data_dir: Path) -> Path:
    """``$DAGSTER_HOME``, or ``<data_dir>/dagster_home`` (exported into the environment) when unset.

    A home without a ``dagster.yaml`` gets the shipped one; an existing one is left alone.
    """
    raw = os.environ.get("DAGSTER_HOME", "").strip()
    home = Path(raw).expanduser().resolve() if raw else data_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(instance_yaml(), encoding="utf-8")
    return home


def get_instance(data_dir: Path) -> dg.DagsterInstance:
    """The instance at `dagster_home(data_dir)`, with the `gpu` pool created."""
    import dagster as dg

    dagster_home(data_dir)
    instance = dg.DagsterInstance.get()
    ensure_pools(instance)
    return instance


def ensure_pools(instance: dg.DagsterInstance) -> None:
    """Create the `gpu` pool's slots from the instance's ``pools.default_limit`` before any run uses it.

    Dagster creates a pool lazily on a step's first claim; two runs starting at the same moment on a
    fresh instance can both claim before the pool exists (seen with SQLite), so every entry point that
    registers or launches work (render, sensor, schedule, REST) creates it first. A limit set
    explicitly (`dagster instance concurrency set gpu N`) is left alone.
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    if instance.global_op_concurrency_default_limit is None:
        return
    if any(pool.name == GPU_POOL for pool in storage.get_pool_limits()):
        return
    storage.initialize_concurrency_limit_to_default(GPU_POOL)


def register_request(instance: dg.DagsterInstance, store: PartitionStore, request: SoundtrackRequest) -> str:
    """Store the request and add its dynamic partition (no-op when both exist); return the key."""
    key = store.save_request(request)
    ensure_pools(instance)
    if not instance.has_dynamic_partition(PARTITIONS_NAME, key):
        instance.add_dynamic_partitions(PARTITIONS_NAME, [key])
    return key
