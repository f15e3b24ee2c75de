"""The REST layer: the older service's HTTP contract served on top of the Dagster pipeline.

`create_app(settings=None)` builds the FastAPI app; `musicgen-pipeline serve` runs it with uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from musicgen_pipeline.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    from musicgen_pipeline.api.app import create_app as _create_app

    return _create_app(settings)


__all__ = ["create_app"]
