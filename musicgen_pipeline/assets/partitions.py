"""The dynamic partitions: one partition per soundtrack request (key = `SoundtrackRequest.partition_key()`)."""

from __future__ import annotations

import dagster as dg

PARTITIONS_NAME = "soundtrack_requests"
soundtrack_partitions = dg.DynamicPartitionsDefinition(name=PARTITIONS_NAME)
