"""``GET /health``: the service's health report (`api.health.health_report`), in a worker thread."""

from __future__ import annotations

import anyio
from fastapi import APIRouter

from musicgen_pipeline.api.context import ApiContext
from musicgen_pipeline.api.health import health_report
from musicgen_pipeline.api.schemas import Health


def health_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter()

    @router.get("/health", response_model=Health)
    async def health() -> Health:
        return await anyio.to_thread.run_sync(health_report, ctx.settings)

    return router
