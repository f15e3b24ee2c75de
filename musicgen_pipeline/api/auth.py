"""API-key check for the job-creating endpoints.

`API_KEY` unset or empty: no auth. Set: `X-API-Key` must be present (401 `Missing X-API-Key header`)
and equal to the key (403 `Invalid API key`). The comparison is constant-time: both sides are hashed
to fixed-length digests first, so neither the content nor the length of the key leaks through timing.

The check runs in `KeyCheckedRoute` before FastAPI reads or validates the body, so a client without
the key learns nothing about the body schema and never makes the server spool an upload. A JSON body
is then read and parsed within limits by `bodies.guard_json_body` (hostile JSON is a 4xx, not a 500).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from musicgen_pipeline.api.bodies import guard_json_body

API_KEY_HEADER = "X-API-Key"
MISSING_KEY = "Missing X-API-Key header"
INVALID_KEY = "Invalid API key"


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


def keys_match(provided: str, expected: str) -> bool:
    """Constant-time equality of two keys of any length."""
    return hmac.compare_digest(_digest(provided), _digest(expected))


def check_api_key(provided: str | None, expected: str) -> tuple[int, str] | None:
    """None when the request may go on; else (status code, detail)."""
    if not expected:
        return None
    if provided is None or provided == "":
        return 401, MISSING_KEY
    if not keys_match(provided, expected):
        return 403, INVALID_KEY
    return None


class KeyCheckedRoute(APIRoute):
    """An APIRoute that checks the API key before anything else (body parsing and validation included).

    The expected key is read from `request.app.state.settings.api_key`.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def key_checked_handler(request: Request) -> Response:
            failure = check_api_key(request.headers.get(API_KEY_HEADER), request.app.state.settings.api_key)
            if failure is not None:
                status, detail = failure
                return JSONResponse({"detail": detail}, status_code=status)
            refused = await guard_json_body(request)
            if refused is not None:
                return refused
            return await handler(request)

        return key_checked_handler
