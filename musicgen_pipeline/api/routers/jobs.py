"""``GET /jobs/{id}`` (a job's status) and ``DELETE /jobs/{id}`` (stop it; API key).

Busy polling never waits on Dagster storage: a fresh view (< 0.5 s) is answered from memory; a
slightly stale one (< 1.5 s) is answered as is while one background thread refreshes it
(stale-while-revalidate); older or unknown ones are read first, in a worker thread. The body is
serialised once per state.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import Response

from musicgen_pipeline.api.auth import KeyCheckedRoute
from musicgen_pipeline.api.context import JOB_NOT_FOUND, KEY_RESPONSES, ApiContext, detail
from musicgen_pipeline.api.schemas import ErrorDetail, JobStatus


def jobs_router(ctx: ApiContext) -> APIRouter:
    jobs = ctx.jobs
    refreshes: set[asyncio.Task[None]] = set()  # background status refreshes (strong references)
    router = APIRouter()

    async def cancel_job(job_id: str) -> Any:
        """Stop a job: a queued one leaves the queue, a running one's run is terminated (an addition
        to the old contract). Answers the job's status after the request; 409 when it had ended."""
        stopped = await anyio.to_thread.run_sync(jobs.cancel, job_id)
        if stopped is None:
            return detail(404, JOB_NOT_FOUND)
        if not stopped:
            return detail(409, "the job has already ended")
        view = await anyio.to_thread.run_sync(jobs.view, job_id)
        return Response(view.status_json(), media_type="application/json")  # type: ignore[union-attr]

    # Declared first (as when it lived in the protected router): DELETE is matched before GET's
    # ``{job_id:path}`` and the OpenAPI document lists it first.
    router.add_api_route(
        "/jobs/{job_id}",
        cancel_job,
        methods=["DELETE"],
        response_model=JobStatus,
        responses={**KEY_RESPONSES, 404: {"model": ErrorDetail}, 409: {"model": ErrorDetail}},
        route_class_override=KeyCheckedRoute,
    )

    @router.get("/jobs/{job_id:path}", response_model=JobStatus, responses={404: {"model": ErrorDetail}})
    async def job_status(job_id: str) -> Any:
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
            return detail(404, JOB_NOT_FOUND)
        return Response(view.status_json(), media_type="application/json")

    return router
