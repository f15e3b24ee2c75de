"""`soundtrack_request`: the partition's validated request, the root of every other asset."""

import json
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from musicgen_pipeline.assets.partitions import soundtrack_partitions
from musicgen_pipeline.launch import load_partition_request, store_request
from musicgen_pipeline.request import parse_request_text
from musicgen_pipeline.settings import get_settings


class RequestConfig(dg.Config):
    """Optional: the request JSON itself (the UI path: add a partition, paste the request, launch).

    Empty (the default): the request stored for the partition by `render`, the inbox sensor, the
    schedule or the REST layer (``outputs/<partition>/request.json``).
    """

    request_json: str = ""


@dg.asset(
    partitions_def=soundtrack_partitions,
    group_name="soundtrack",
    kinds={"json"},
    description="The validated request of this partition (scenes, prompts, seed, model, switches).",
)
def soundtrack_request(context: AssetExecutionContext, config: RequestConfig) -> dict[str, Any]:
    key = context.partition_key
    if config.request_json.strip():
        request = parse_request_text(config.request_json, source="run config request_json")
        store_request(request, key)
    else:
        request = load_partition_request(key)
    settings = get_settings()
    prompts = request.scene_prompts()
    table = "\n".join(
        f"| {i} | {s.mood or '-'} | {s.duration:g} | {p} |"
        for i, (s, p) in enumerate(zip(request.scenes, prompts, strict=True))
    )
    context.add_output_metadata(
        {
            "scenes": len(request.scenes),
            "total_seconds": request.total_duration,
            "expected_soundtrack_seconds": request.expected_duration,
            "model": request.model or settings.musicgen_model,
            "seed": request.seed,
            "scene_conditioning": request.scene_conditioning,
            "switches": json.dumps(
                {
                    "beat_aligned": request.beat_aligned,
                    "tempo_match": request.tempo_match,
                    "stem_aware": request.stem_aware,
                    "crossfade_duration": request.crossfade_duration,
                    "output_format": request.output_format,
                }
            ),
            "prompts": dg.MetadataValue.md(
                "| scene | mood | seconds | prompt |\n|---|---|---|---|\n" + table
            ),
        }
    )
    return request.to_dict()
