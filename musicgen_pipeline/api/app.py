"""The FastAPI app serving the older service's REST contract (`seed-api.md`) on top of the pipeline.

`create_app(settings)` builds one app: job-creating routes behind the API key (`auth.KeyCheckedRoute`,
checked before the body is read), job status and files read from Dagster and the outputs folder,
Prometheus metrics. Nothing here renders audio: jobs are Dagster runs in detached processes, and every
blocking call (Dagster storage, file checks) runs in a worker thread, so the event loop stays free.
"""

# No `from __future__ import annotations`: FastAPI resolves the per-app request models defined inside
# `create_app` from the real annotations.

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from musicgen_pipeline import __version__
from musicgen_pipeline.api.auth import KeyCheckedRoute
from musicgen_pipeline.api.bodies import validation_error
from musicgen_pipeline.api.fetch import FetchError, UrlPolicy, fetch_to_file
from musicgen_pipeline.api.files import FileAccessError, media_type, resolve_output_file
from musicgen_pipeline.api.health import health_report
from musicgen_pipeline.api.jobs import Jobs, build_request, new_job_id
from musicgen_pipeline.api.listen import listen_router
from musicgen_pipeline.api.metrics import ApiMetrics, RequestMetricsMiddleware, summary_json
from musicgen_pipeline.api.schemas import (
    ApiLimits,
    ErrorDetail,
    Health,
    JobCreated,
    JobStatus,
    MetricsSummary,
    SeparateJsonBody,
    check_stem_mode,
    request_models,
)
from musicgen_pipeline.api.uploads import read_multipart, store_download, store_upload
from musicgen_pipeline.errors import InputError
from musicgen_pipeline.models.capabilities import supports_melody
from musicgen_pipeline.request import RequestError, SoundtrackRequest
from musicgen_pipeline.retention import InsufficientSpaceError, check_free_space
from musicgen_pipeline.run_queue import QueueFull
from musicgen_pipeline.settings import Settings, get_settings

JOB_NOT_FOUND = "Job not found"
MELODY_FIELD = "melody"  # the pipeline request's field for a melody reference (an audio file path)


def _pipeline_errors(exc: RequestError, body: dict[str, Any]) -> RequestValidationError:
    """The pipeline's own validation problems as standard 422 entries."""
    errors = []
    for problem in exc.problems:
        loc: list[str | int] = ["body"]
        for part in problem.field.replace("]", "").replace("[", ".").split("."):
            if part and not part.startswith("<"):
                loc.append(int(part) if part.isdigit() else part)
        errors.append(
            {"type": "value_error", "loc": tuple(loc), "msg": problem.message, "input": problem.value}
        )
    return RequestValidationError(errors, body=body)


def _body_errors(exc: ValidationError) -> RequestValidationError:
    errors = []
    for error in exc.errors(include_url=False):
        entry = dict(error)
        entry["loc"] = ("body", *error["loc"])
        if "ctx" in entry:
            entry["ctx"] = {k: (str(v) if isinstance(v, Exception) else v) for k, v in entry["ctx"].items()}
        errors.append(entry)
    return RequestValidationError(errors)


def _detail(status_code: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    limits = ApiLimits.from_settings(settings)
    generate_model, soundtrack_model = request_models(limits)
    jobs = Jobs(settings)
    policy = UrlPolicy.from_settings(settings)
    metrics = ApiMetrics(jobs)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The run dispatcher (queued jobs start as run slots free) and the dead-run reaper live as
        # long as the server.
        await anyio.to_thread.run_sync(jobs.start_background)
        # The health report imports torch (10-30 s on a busy machine): done before the port answers,
        # so the first `GET /health` (an orchestrator's probe) is as fast as every later one.
        await anyio.to_thread.run_sync(health_report, settings)
        try:
            yield
        finally:
            jobs.stop_background()

    app = FastAPI(
        title="musicgen-pipeline REST API",
        version=__version__,
        description="The older MusicGen service's REST contract, every job a Dagster run.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.jobs = jobs
    app.state.metrics = metrics
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)

    refreshes: set[asyncio.Task[None]] = set()  # background status refreshes (strong references)
    protected = APIRouter(route_class=KeyCheckedRoute)
    public = APIRouter()
    key_responses: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorDetail, "description": "Missing X-API-Key header"},
        403: {"model": ErrorDetail, "description": "Invalid API key"},
    }

    async def submit(
        job_type: str, fields: dict[str, Any], body: dict[str, Any], melody_url: str | None = None
    ) -> JobCreated:
        nonce = new_job_id()
        await anyio.to_thread.run_sync(check_free_space, settings.data_dir, settings.min_free_bytes, "job")
        try:
            request: SoundtrackRequest = build_request(
                job_type, fields, nonce, default_model=settings.musicgen_model
            )
        except RequestError as exc:
            raise _pipeline_errors(exc, body) from None
        if melody_url is not None:  # fetched only once everything else is known to be valid
            fields = {
                **fields,
                "seed": request.seed,
                MELODY_FIELD: str(
                    await fetch_melody(melody_url, nonce, request.model or settings.musicgen_model)
                ),
            }
            try:
                request = build_request(job_type, fields, nonce, default_model=settings.musicgen_model)
            except RequestError as exc:
                raise _pipeline_errors(exc, body) from None
        record = await anyio.to_thread.run_sync(jobs.submit_soundtrack, job_type, request)
        metrics.submitted.labels(job_type).inc()
        return JobCreated(job_id=record.job_id, status="queued")

    @protected.post("/generate", response_model=JobCreated, responses=key_responses)
    async def generate(body: generate_model) -> JobCreated:  # type: ignore[valid-type]
        fields = {"prompt": body.effective_prompt(), "duration": body.duration, "seed": body.seed}
        return await submit("generate", fields, body.model_dump())

    @protected.post("/generate/soundtrack", response_model=JobCreated, responses=key_responses)
    async def generate_soundtrack(body: soundtrack_model) -> JobCreated:  # type: ignore[valid-type]
        fields: dict[str, Any] = {
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
        return await submit("soundtrack", fields, body.model_dump(), body.melody_audio_url)

    async def fetch_melody(url: str, nonce: str, model_id: str) -> Path:
        if not supports_melody(model_id):
            # Refused rather than silently ignored (the old service's behaviour), before any download.
            raise RequestValidationError(
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
        return await download(url, f"{nonce}-melody", "melody_audio_url")

    async def download(url: str, stored_name: str, field: str) -> Path:
        uploads = jobs.uploads_dir
        uploads.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".download-", dir=uploads)
        os.close(fd)
        tmp = Path(name)
        await fetch_to_file(url, tmp, policy, field=field)
        stored = await store_download(tmp, uploads, stored_name, field, url, limits.audio)
        return stored.path

    @protected.post(
        "/separate",
        response_model=JobCreated,
        responses=key_responses,
        openapi_extra={
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
        },
    )
    async def separate(request: Request) -> JobCreated:
        job_id = new_job_id()
        await anyio.to_thread.run_sync(check_free_space, settings.data_dir, settings.min_free_bytes, "job")
        content_type = request.headers.get("content-type", "").lower()
        if content_type.startswith("multipart/form-data"):
            form = await read_multipart(request, limits.max_upload_bytes)
            try:
                stems = _form_stems(form.fields.get("stems"))
            except RequestValidationError:
                if form.file is not None:
                    await form.file.close()
                raise
            if form.file is None:
                raise RequestValidationError(
                    [{"type": "missing", "loc": ("body", "file"), "msg": "Field required", "input": None}]
                )
            stored = await store_upload(form.file, jobs.uploads_dir, job_id, limits.audio)
            input_path = stored.path
        else:
            # Read, limited and parsed by `bodies.guard_json_body` (in the route class) already.
            data = await request.json() if await request.body() else None
            if data is None:
                raise RequestValidationError(
                    [{"type": "missing", "loc": ("body", "file"), "msg": "Field required", "input": None}]
                )
            try:
                body = SeparateJsonBody.model_validate(data)
            except ValidationError as exc:
                raise _body_errors(exc) from None
            stems = body.stems
            input_path = await download(body.audio_url, job_id, "audio_url")
        try:
            await anyio.to_thread.run_sync(jobs.submit_separation, job_id, input_path, stems)
        except BaseException:
            input_path.unlink(missing_ok=True)  # no job, so no reason to keep the client's file
            raise
        metrics.submitted.labels("separate").inc()
        return JobCreated(job_id=job_id, status="queued")

    @public.get("/health", response_model=Health)
    async def health() -> Health:
        return await anyio.to_thread.run_sync(health_report, settings)

    @public.get("/jobs/{job_id:path}", response_model=JobStatus, responses={404: {"model": ErrorDetail}})
    async def job_status(job_id: str) -> Any:
        # Busy polling never waits on Dagster storage: a fresh view (< 0.5 s) is answered from memory; a
        # slightly stale one (< 1.5 s) is answered as is while one background thread refreshes it
        # (stale-while-revalidate); older or unknown ones are read first, in a worker thread. The body
        # is serialised once per state.
        view = jobs.cached_view(job_id)
        if view is None:
            view = jobs.stale_view(job_id)
            if view is None:
                view = await anyio.to_thread.run_sync(jobs.view, job_id)
            elif jobs.claim_refresh(job_id):
                task = asyncio.get_running_loop().create_task(anyio.to_thread.run_sync(jobs.refresh, job_id))
                refreshes.add(task)
                task.add_done_callback(refreshes.discard)
        if view is None:
            return _detail(404, JOB_NOT_FOUND)
        return Response(view.status_json(), media_type="application/json")

    @protected.delete(
        "/jobs/{job_id}",
        response_model=JobStatus,
        responses={**key_responses, 404: {"model": ErrorDetail}, 409: {"model": ErrorDetail}},
    )
    async def cancel_job(job_id: str) -> Any:
        """Stop a job: a queued one leaves the queue, a running one's run is terminated (an addition
        to the old contract). Answers the job's status after the request; 409 when it had ended."""
        stopped = await anyio.to_thread.run_sync(jobs.cancel, job_id)
        if stopped is None:
            return _detail(404, JOB_NOT_FOUND)
        if not stopped:
            return _detail(409, "the job has already ended")
        view = await anyio.to_thread.run_sync(jobs.view, job_id)
        return Response(view.status_json(), media_type="application/json")  # type: ignore[union-attr]

    @public.get(
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
                    resolve_output_file, settings.outputs_dir, candidate, jobs.result_file
                )
            except FileAccessError as exc:
                if exc.status_code == 403:
                    return _detail(403, exc.detail)
                last = exc
                continue
            return FileResponse(path, media_type=media_type(path), filename=_download_name(filename, path))
        return _detail(last.status_code, last.detail)

    @public.get("/metrics", response_class=Response)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @public.get("/metrics/json", response_model=MetricsSummary)
    async def metrics_json() -> dict[str, Any]:
        views = await anyio.to_thread.run_sync(jobs.summary)
        return summary_json(views)

    app.include_router(protected)
    app.include_router(public)
    app.include_router(listen_router(settings))

    @app.exception_handler(FetchError)
    async def fetch_error(_: Request, exc: FetchError) -> JSONResponse:
        return _detail(exc.status_code, exc.detail)

    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]

    @app.exception_handler(InsufficientSpaceError)
    async def no_space(_: Request, exc: InsufficientSpaceError) -> JSONResponse:
        return _detail(507, str(exc))

    @app.exception_handler(InputError)
    async def input_error(_: Request, exc: InputError) -> JSONResponse:
        return _detail(400, str(exc))

    @app.exception_handler(QueueFull)
    async def queue_full(_: Request, exc: QueueFull) -> JSONResponse:
        response = _detail(503, str(exc))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    return app


def _form_stems(raw: str | None) -> int:
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


def _download_name(requested: str, path: Path) -> str:
    name = requested.rsplit("/", 1)[-1]
    return name if name.endswith(path.suffix) else path.name
