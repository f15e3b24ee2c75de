"""How the REST app answers errors: validation problems as standard 422 entries, and one handler
per error kind (`install_error_handlers`).

- `pipeline_errors(exc, body)`: the pipeline's `RequestError` problems as FastAPI 422 entries
  (``loc`` from the problem's field path).
- `body_errors(exc)`: a pydantic `ValidationError` of a body validated by hand (JSON /separate).
- Handlers: `FetchError` -> its status, `RequestValidationError` -> 422 (`bodies.validation_error`),
  `InsufficientSpaceError` -> 507, `InputError` -> 400, `QueueFull` -> 503 with ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from musicgen_pipeline.api.bodies import validation_error
from musicgen_pipeline.api.context import detail
from musicgen_pipeline.api.fetch import FetchError
from musicgen_pipeline.errors import InputError
from musicgen_pipeline.request import RequestError
from musicgen_pipeline.retention import InsufficientSpaceError
from musicgen_pipeline.run_queue import QueueFull


def pipeline_errors(exc: RequestError, body: dict[str, Any]) -> RequestValidationError:
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


def body_errors(exc: ValidationError) -> RequestValidationError:
    errors = []
    for error in exc.errors(include_url=False):
        entry = dict(error)
        entry["loc"] = ("body", *error["loc"])
        if "ctx" in entry:
            entry["ctx"] = {k: (str(v) if isinstance(v, Exception) else v) for k, v in entry["ctx"].items()}
        errors.append(entry)
    return RequestValidationError(errors)


async def _fetch_error(_: Request, exc: FetchError) -> JSONResponse:
    return detail(exc.status_code, exc.detail)


async def _no_space(_: Request, exc: InsufficientSpaceError) -> JSONResponse:
    return detail(507, str(exc))


async def _input_error(_: Request, exc: InputError) -> JSONResponse:
    return detail(400, str(exc))


async def _queue_full(_: Request, exc: QueueFull) -> JSONResponse:
    response = detail(503, str(exc))
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FetchError, _fetch_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(InsufficientSpaceError, _no_space)  # type: ignore[arg-type]
    app.add_exception_handler(InputError, _input_error)  # type: ignore[arg-type]
    app.add_exception_handler(QueueFull, _queue_full)  # type: ignore[arg-type]
