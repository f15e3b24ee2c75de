"""``POST /separate``: a stem-separation job from a multipart upload (``file``, ``stems``) or a JSON
body with ``audio_url`` (fetched within the URL policy). The file is validated as audio and stored
before the job is submitted; when submitting fails, the stored file is removed (no job, no file)."""

from __future__ import annotations

from pathlib import Path

import anyio
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from musicgen_pipeline.api.auth import KeyCheckedRoute
from musicgen_pipeline.api.context import KEY_RESPONSES, ApiContext
from musicgen_pipeline.api.errors import body_errors
from musicgen_pipeline.api.jobs import new_job_id
from musicgen_pipeline.api.schemas import JobCreated, SeparateJsonBody, check_stem_mode
from musicgen_pipeline.api.uploads import read_multipart, store_upload

REQUEST_BODY = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "stems": {"type": "integer", "enum": [4, 2], "default": 4},
                    },
                }
            },
            "application/json": {"schema": SeparateJsonBody.model_json_schema()},
        },
        "required": True,
    }
}


def _file_missing() -> RequestValidationError:
    return RequestValidationError(
        [{"type": "missing", "loc": ("body", "file"), "msg": "Field required", "input": None}]
    )


def form_stems(raw: str | None) -> int:
    """The multipart ``stems`` field: 4 when absent, else 4 or 2 (422 entries as pydantic words them)."""
    if raw is None or raw.strip() == "":
        return 4
    try:
        value = int(raw.strip())
    except ValueError:
        raise RequestValidationError(
            [
                {
                    "type": "int_parsing",
                    "loc": ("body", "stems"),
                    "msg": "Input should be a valid integer, unable to parse string as an integer",
                    "input": raw,
                }
            ]
        ) from None
    try:
        return check_stem_mode(value)
    except ValueError as exc:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body", "stems"), "msg": f"Value error, {exc}", "input": raw}]
        ) from None


async def _uploaded(ctx: ApiContext, request: Request, job_id: str) -> tuple[Path, int]:
    form = await read_multipart(request, ctx.limits.max_upload_bytes)
    try:
        stems = form_stems(form.fields.get("stems"))
    except RequestValidationError:
        if form.file is not None:
            await form.file.close()
        raise
    if form.file is None:
        raise _file_missing()
    stored = await store_upload(form.file, ctx.jobs.uploads_dir, job_id, ctx.limits.audio)
    return stored.path, stems


async def _fetched(ctx: ApiContext, request: Request, job_id: str) -> tuple[Path, int]:
    # Read, limited and parsed by `bodies.guard_json_body` (in the route class) already.
    data = await request.json() if await request.body() else None
    if data is None:
        raise _file_missing()
    try:
        body = SeparateJsonBody.model_validate(data)
    except ValidationError as exc:
        raise body_errors(exc) from None
    return await ctx.download(body.audio_url, job_id, "audio_url"), body.stems


def separate_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(route_class=KeyCheckedRoute)

    @router.post("/separate", response_model=JobCreated, responses=KEY_RESPONSES, openapi_extra=REQUEST_BODY)
    async def separate(request: Request) -> JobCreated:
        job_id = new_job_id()
        await ctx.check_space()
        content_type = request.headers.get("content-type", "").lower()
        if content_type.startswith("multipart/form-data"):
            input_path, stems = await _uploaded(ctx, request, job_id)
        else:
            input_path, stems = await _fetched(ctx, request, job_id)
        try:
            await anyio.to_thread.run_sync(ctx.jobs.submit_separation, job_id, input_path, stems)
        except BaseException:
            input_path.unlink(missing_ok=True)  # no job, so no reason to keep the client's file
            raise
        ctx.metrics.submitted.labels("separate").inc()
        return JobCreated(job_id=job_id, status="queued")

    return router
