"""``GET /metrics`` (Prometheus text) and ``GET /metrics/json`` (the jobs' summary)."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from musicgen_pipeline.api.context import ApiContext
from musicgen_pipeline.api.metrics import summary_json
from musicgen_pipeline.api.schemas import MetricsSummary


def metrics_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter()

    @router.get("/metrics", response_class=Response)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/metrics/json", response_model=MetricsSummary)
    async def metrics_json() -> dict[str, Any]:
        views = await anyio.to_thread.run_sync(ctx.jobs.summary)
        return summary_json(views)

    return router
