"""`scene_generation`: several partitions' scenes generated in one batched pass (bulk rendering).

One step settles the generation state of every partition of its run (`context.partition_keys`: one
partition, or a range, which is what a bulk run and a backfill with this asset's `multi_run` policy
launch) with `bulk_generation.settle_partitions`: per plan step, scene k of every request in one
batched MusicGen call, continuation rows and the quality loop's regenerations batched across requests,
at most MUSICGEN_MAX_BATCH rows per call. It writes, per partition, exactly the attempt files a single
render writes (`generation/<fingerprint>/scene_ii/...`), so that partition's own `scene_segments` step
(own run, own assets, files, metadata and checks) then finds every scene settled and generates nothing;
its audio is bit-identical to rendering it alone.

Failure isolation: a request whose generation fails here is recorded in its metadata (``error``), not
raised, because a step fails as a whole; its own `scene_segments` step then generates what is missing
alone and fails only its partition. Re-executing resumes from the files: only what is missing is made.

Not in the render job (group ``bulk``): a single render generates in its own `scene_segments` step.
Per partition metadata: its share of the batched calls' wall time, real-time factor, batch sizes.
"""

import dagster as dg
from dagster import AssetExecutionContext

from musicgen_pipeline.bulk_generation import BulkOutcome, settle_partitions
from musicgen_pipeline.defs.metadata import listen_link, ms, sig3, speed
from musicgen_pipeline.defs.partitions import soundtrack_partitions
from musicgen_pipeline.gpu_runs import GPU_POOL
from musicgen_pipeline.naming import BULK_GROUP
from musicgen_pipeline.resources import MusicGenResource, SettingsResource
from musicgen_pipeline.scene_attempts import SegmentGenerator
from musicgen_pipeline.settings import DEFAULT_MAX_BATCH


def bulk_metadata(outcome: BulkOutcome, partitions: int, listen: dg.UrlMetadataValue) -> dict:
    """What one partition's materialization says about its share of the bulk pass."""
    batches = outcome.batches
    return {
        "listen": listen,
        "status": "failed: left to its own scene_segments step" if outcome.error else "settled",
        "error": outcome.error or "",
        "bulk_partitions": partitions,
        "batch_size": max(batches) if batches else 0,
        "batch_sizes": ", ".join(str(b) for b in batches) or "-",
        "rows_generated": len(batches),
        "generation_seconds": ms(outcome.seconds),
        "audio_seconds": ms(outcome.audio_seconds),
        "real_time_factor": sig3(outcome.real_time_factor) if outcome.audio_seconds else 0.0,
        **speed(outcome.audio_seconds, outcome.seconds),
    }


@dg.asset(
    partitions_def=soundtrack_partitions,
    group_name=BULK_GROUP,
    pool=GPU_POOL,
    kinds={"pytorch"},
    backfill_policy=dg.BackfillPolicy.multi_run(DEFAULT_MAX_BATCH),
    description="Bulk rendering: the scenes of several soundtrack partitions generated together (scene k of "
    "every request per batched MusicGen call, regenerations batched too), each partition's files exactly "
    "what its single render writes. Select several partitions and materialize: one step per range.",
)
def scene_generation(
    context: AssetExecutionContext, musicgen: MusicGenResource, settings: SettingsResource
) -> None:
    config, store = settings.resolved, settings.store
    keys = list(context.partition_keys)

    def generator_for(key: str) -> SegmentGenerator:
        return SegmentGenerator(context.log, store.load_request(key), musicgen, config, store.files(key))

    outcomes = settle_partitions(
        keys, generator_for, max_batch=config.musicgen_max_batch, log=context.log.info
    )
    for key, outcome in outcomes.items():
        if outcome.error:
            context.log.error(f"{key}: {outcome.error} (its own scene_segments step generates it alone)")
        listen = listen_link(config.listen_url, key)
        context.add_asset_metadata(bulk_metadata(outcome, len(keys), listen), partition_key=key)
