"""The dynamic partitions: one per soundtrack request (key = `SoundtrackRequest.partition_key()`) and one
per REST ``/separate`` job (key = ``sep-<job id>``)."""

from __future__ import annotations

import dagster as dg

from musicgen_pipeline.naming import PARTITIONS_NAME, SEPARATION_PARTITIONS_NAME

soundtrack_partitions = dg.DynamicPartitionsDefinition(name=PARTITIONS_NAME)
separation_partitions = dg.DynamicPartitionsDefinition(name=SEPARATION_PARTITIONS_NAME)
