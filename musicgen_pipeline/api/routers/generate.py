"""``POST /generate`` and ``POST /generate/soundtrack``: a soundtrack job from the old contract's body.

The body is validated by the per-app pydantic models (`schemas.request_models`), turned into the
pipeline's request (`jobs.build_request`, its problems answered as 422 entries), and a melody URL is
fetched only once everything else is known to be valid (and only for a model with melody
conditioning). Then the job is submitted (a detached Dagster run, queued when no run slot is free).
"""

# No `from __future__ import annotations`: FastAPI resolves the per-app request models defined inside
# `generate_router` from the real annotations.

from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError

from musicgen_pipeline.api.auth import KeyCheckedRoute
from musicgen_pipeline.api.context import KEY_RESPONSES, ApiContext
from musicgen_pipeline.api.errors import pipeline_errors
from musicgen_pipeline.api.jobs import build_request, new_job_id
from musicgen_pipeline.api.schemas import JobCreated, request_models
from musicgen_pipeline.models.capabilities import supports_melody
from musicgen_pipeline.request import RequestError, SoundtrackRequest

MELODY_FIELD = "melody"  # the pipeline request's field for a melody reference (an audio file path)


def _melody_refused(url: str, model_id: str) -> RequestValidationError:
    # Refused rather than silently ignored (the old service's behaviour), before any download.
    return RequestValidationError(
        [
            {
                "type": "value_error",
                "loc": ("body", "melody_audio_url"),
                "msg": f"melody conditioning needs a melody model; the configured model {model_id!r} "
                "has none (set MUSICGEN_MODEL=facebook/musicgen-melody, or tiny-random-melody offline)",
                "input": url,
            }
        ]
    )


def _soundtrack_fields(body: Any) -> dict[str, Any]:
    """The pipeline request's fields of a ``/generate/soundtrack`` body (unset scene fields left out)."""
    return {
        "base_prompt": body.base_prompt,
        "scenes": [
            {
                k: v
                for k, v in {"mood": s.mood, "duration": s.duration, "prompt": s.prompt}.items()
                if v is not None
            }
            for s in body.scenes
        ],
        "crossfade_duration": body.crossfade_duration,
        "beat_aligned": body.use_beat_aligned_crossfade,
        "seed": body.seed,
    }


def generate_router(ctx: ApiContext) -> APIRouter:
    settings, jobs = ctx.settings, ctx.jobs
    generate_model, soundtrack_model = request_models(ctx.limits)
    router = APIRouter(route_class=KeyCheckedRoute)

    def build(job_type: str, fields: dict[str, Any], nonce: str, body: dict[str, Any]) -> SoundtrackRequest:
        try:
            return build_request(job_type, fields, nonce, default_model=settings.musicgen_model)
        except RequestError as exc:
            raise pipeline_errors(exc, body) from None

    async def fetch_melody(url: str, nonce: str, model_id: str) -> Path:
        if not supports_melody(model_id):
            raise _melody_refused(url, model_id)
        return await ctx.download(url, f"{nonce}-melody", "melody_audio_url")

    async def submit(
        job_type: str, fields: dict[str, Any], body: dict[str, Any], melody_url: str | None = None
    ) -> JobCreated:
        nonce = new_job_id()
        await ctx.check_space()
        request = build(job_type, fields, nonce, body)
        if melody_url is not None:  # fetched only once everything else is known to be valid
            melody = await fetch_melody(melody_url, nonce, request.model or settings.musicgen_model)
            fields = {**fields, "seed": request.seed, MELODY_FIELD: str(melody)}
            request = build(job_type, fields, nonce, body)
        record = await anyio.to_thread.run_sync(jobs.submit_soundtrack, job_type, request)
        ctx.metrics.submitted.labels(job_type).inc()
        return JobCreated(job_id=record.job_id, status="queued")

    @router.post("/generate", response_model=JobCreated, responses=KEY_RESPONSES)
    async def generate(body: generate_model) -> JobCreated:  # type: ignore[valid-type]
        fields = {"prompt": body.effective_prompt(), "duration": body.duration, "seed": body.seed}
        return await submit("generate", fields, body.model_dump())

    @router.post("/generate/soundtrack", response_model=JobCreated, responses=KEY_RESPONSES)
    async def generate_soundtrack(body: soundtrack_model) -> JobCreated:  # type: ignore[valid-type]
        return await submit("soundtrack", _soundtrack_fields(body), body.model_dump(), body.melody_audio_url)

    return router
