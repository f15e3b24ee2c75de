"""`soundtrack_request`: the partition's validated request, the root of every other asset."""

import json

import dagster as dg
from dagster import AssetExecutionContext

from musicgen_pipeline.defs.metadata import listen_link, ms, table
from musicgen_pipeline.defs.partitions import soundtrack_partitions
from musicgen_pipeline.naming import SOUNDTRACK_GROUP
from musicgen_pipeline.request import SoundtrackRequest, parse_request_text
from musicgen_pipeline.resources import SettingsResource
from musicgen_pipeline.retention import check_free_space


class RequestConfig(dg.Config):
    """Optional: the request JSON itself (the UI path: add a partition, paste the request, launch).

    Empty (the default): the request stored for the partition by `render`, the inbox sensor, the
    schedule or the REST layer (``outputs/<partition>/request.json``).
    """

    request_json: str = ""


@dg.asset(
    partitions_def=soundtrack_partitions,
    group_name=SOUNDTRACK_GROUP,
    kinds={"json"},
    description="The validated request of this partition (scenes, prompts, seed, model, switches).",
)
def soundtrack_request(
    context: AssetExecutionContext, config: RequestConfig, settings: SettingsResource
) -> SoundtrackRequest:
    key = context.partition_key
    store = settings.store
    # The first step: a run that cannot finish for lack of disk fails here, in words, before writing.
    check_free_space(settings.resolved.data_dir, settings.resolved.min_free_bytes, f"render of {key}")
    if config.request_json.strip():
        request = parse_request_text(
            config.request_json,
            source="run config request_json",
            default_model=settings.resolved.musicgen_model,
        )
        store.save_request(request, key)
    else:
        request = store.load_request(key)
    prompts = request.scene_prompts()
    context.add_output_metadata(
        {
            "listen": listen_link(settings.resolved.listen_url, key),
            "scenes": len(request.scenes),
            "total_seconds": request.total_duration,
            "expected_soundtrack_seconds": request.expected_duration,
            "model": request.model or settings.resolved.musicgen_model,
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
            "prompts": table(
                [
                    ("scene", "int", "scene number (1 = first)"),
                    ("mood", "string", "the scene's mood"),
                    ("seconds", "float", "the scene's share of the soundtrack"),
                    ("prompt", "string", "what MusicGen is asked for"),
                ],
                [
                    {"scene": i + 1, "mood": s.mood or "-", "seconds": ms(s.duration), "prompt": p}
                    for i, (s, p) in enumerate(zip(request.scenes, prompts, strict=True))
                ],
            ),
        }
    )
    return request
