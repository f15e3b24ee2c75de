"""What every router of the REST app shares: one `ApiContext` per app, built by `create_app`.

`ApiContext` holds the app's settings, request limits, job store (`Jobs`), URL policy and metrics,
and the two steps several routes take: `check_space()` (507 below MIN_FREE_DISK_MB, before anything is
stored) and `download(url, name, field)` (fetch within the URL policy, then validate and store it
as an upload). `KEY_RESPONSES` documents the API-key answers of the protected routes; `detail()` is
the contract's error body (``{"detail": ...}``).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from fastapi.responses import JSONResponse

from musicgen_pipeline.api.fetch import UrlPolicy, fetch_to_file
from musicgen_pipeline.api.jobs import Jobs
from musicgen_pipeline.api.metrics import ApiMetrics
from musicgen_pipeline.api.schemas import ApiLimits, ErrorDetail
from musicgen_pipeline.api.uploads import store_download
from musicgen_pipeline.retention import check_free_space
from musicgen_pipeline.settings import Settings

JOB_NOT_FOUND = "Job not found"
KEY_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "Missing X-API-Key header"},
    403: {"model": ErrorDetail, "description": "Invalid API key"},
}


def detail(status_code: int, text: str) -> JSONResponse:
    """The contract's error body: ``{"detail": text}`` with `status_code`."""
    return JSONResponse({"detail": text}, status_code=status_code)


@dataclass(frozen=True)
class ApiContext:
    settings: Settings
    limits: ApiLimits
    jobs: Jobs
    policy: UrlPolicy
    metrics: ApiMetrics

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiContext:
        jobs = Jobs(settings)
        return cls(
            settings=settings,
            limits=ApiLimits.from_settings(settings),
            jobs=jobs,
            policy=UrlPolicy.from_settings(settings),
            metrics=ApiMetrics(jobs),
        )

    async def check_space(self) -> None:
        """Raise `InsufficientSpaceError` (507) when the data volume is below MIN_FREE_DISK_MB."""
        await anyio.to_thread.run_sync(
            check_free_space, self.settings.data_dir, self.settings.min_free_bytes, "job"
        )

    async def download(self, url: str, stored_name: str, field: str) -> Path:
        """Fetch `url` (URL policy, size limit) into the uploads folder as `stored_name`, checked as audio."""
        uploads = self.jobs.uploads_dir
        uploads.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".download-", dir=uploads)
        os.close(fd)
        tmp = Path(name)
        await fetch_to_file(url, tmp, self.policy, field=field)
        stored = await store_download(tmp, uploads, stored_name, field, url, self.limits.audio)
        return stored.path
