"""``GET /files/{name}``: a result file of a job, resolved by `api.files.resolve_output_file` inside
the outputs folder (403 outside it, 404 unknown); the raw path is tried first, then the decoded one."""

from __future__ import annotations

from pathlib import Path

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from musicgen_pipeline.api.context import ApiContext, detail
from musicgen_pipeline.api.files import FileAccessError, media_type, resolve_output_file
from musicgen_pipeline.api.schemas import ErrorDetail


def download_name(requested: str, path: Path) -> str:
    """The attachment's name: the requested name when it keeps the file's suffix, else the file's."""
    name = requested.rsplit("/", 1)[-1]
    return name if name.endswith(path.suffix) else path.name


def files_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter()
    outputs_dir, result_file = ctx.settings.outputs_dir, ctx.jobs.result_file

    @router.get(
        "/files/{filename:path}",
        response_class=FileResponse,
        responses={403: {"model": ErrorDetail}, 404: {"model": ErrorDetail}},
    )
    async def files(filename: str, request: Request) -> Response:
        raw_path = request.scope.get("raw_path", b"").decode("latin-1")
        raw_name = raw_path.split("/files/", 1)[1] if "/files/" in raw_path else filename
        for candidate in (raw_name, filename):
            try:
                path = await anyio.to_thread.run_sync(
                    resolve_output_file, outputs_dir, candidate, result_file
                )
            except FileAccessError as exc:
                if exc.status_code == 403:
                    return detail(403, exc.detail)
                last = exc
                continue
            return FileResponse(path, media_type=media_type(path), filename=download_name(filename, path))
        return detail(last.status_code, last.detail)

    return router
