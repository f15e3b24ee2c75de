"""The FastAPI app serving the older service's REST contract (`seed-api.md`) on top of the pipeline.

`create_app(settings)` builds one app from one `ApiContext` (settings, limits, job store, URL policy,
metrics) and the routers of `api.routers`, one per concern: job creation (``/generate``,
``/generate/soundtrack``, ``/separate``; behind the API key, `auth.KeyCheckedRoute`, checked before
the body is read), ``/jobs`` status and cancel, ``/health``, ``/files``, ``/metrics``, and the
``/listen`` pages; `api.errors` answers errors. Nothing here renders audio: jobs are Dagster runs in
detached processes, and every blocking call (Dagster storage, file checks) runs in a worker thread,
so the event loop stays free.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from musicgen_pipeline import __version__
from musicgen_pipeline.api.context import ApiContext
from musicgen_pipeline.api.errors import install_error_handlers
from musicgen_pipeline.api.health import health_report
from musicgen_pipeline.api.listen import listen_router
from musicgen_pipeline.api.metrics import RequestMetricsMiddleware
from musicgen_pipeline.api.routers.files import files_router
from musicgen_pipeline.api.routers.generate import generate_router
from musicgen_pipeline.api.routers.health import health_router
from musicgen_pipeline.api.routers.jobs import jobs_router
from musicgen_pipeline.api.routers.metrics import metrics_router
from musicgen_pipeline.api.routers.separate import separate_router
from musicgen_pipeline.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    ctx = ApiContext.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The run dispatcher (queued jobs start as run slots free) and the dead-run reaper live as
        # long as the server.
        await anyio.to_thread.run_sync(ctx.jobs.start_background)
        # The health report imports torch (10-30 s on a busy machine): done before the port answers,
        # so the first `GET /health` (an orchestrator's probe) is as fast as every later one.
        await anyio.to_thread.run_sync(health_report, settings)
        try:
            yield
        finally:
            ctx.jobs.stop_background()

    app = FastAPI(
        title="musicgen-pipeline REST API",
        version=__version__,
        description="The older MusicGen service's REST contract, every job a Dagster run.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.jobs = ctx.jobs
    app.state.metrics = ctx.metrics
    app.add_middleware(RequestMetricsMiddleware, metrics=ctx.metrics)
    # In this order, the OpenAPI document lists the paths as the old contract's did.
    for router in (
        generate_router,
        separate_router,
        jobs_router,
        health_router,
        files_router,
        metrics_router,
    ):
        app.include_router(router(ctx))
    app.include_router(listen_router(settings))
    install_error_handlers(app)
    return app
