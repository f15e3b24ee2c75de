"""JSON request bodies and what 422 answers echo back.

`guard_json_body(request)` runs before FastAPI parses a body (from `auth.KeyCheckedRoute`, after the
key check): it reads a non-multipart body up to `JSON_BODY_LIMITS.max_bytes` (cut off while
streaming; a larger one is 413) and parses it with `safe_json.loads`, so a body nested 100 000 levels
deep, `NaN`/`Infinity`, a 5 000-digit number, a lone surrogate (`"\\ud800"`), an over-long string or
UTF-16 text is one 422 entry naming the problem instead of a 500 or a silent reinterpretation. The
parsed document is handed on to FastAPI, which does not parse it again.

`short_errors(errors)` makes validation errors safe and small to send: echoed inputs are cut to an
excerpt (a 10 MB prompt is answered with 100 characters of it and its length), non-finite numbers
and lone surrogates become text, nested inputs are summarised.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect, Request

from musicgen_pipeline.safe_json import JsonInputError, JsonLimits, loads

JSON_BODY_LIMITS = JsonLimits()  # 1 MiB, depth 32: a 100-scene soundtrack request is ~20 kB
ECHO_CHARS = 100  # longest string echoed back in a 422 entry
ECHO_ITEMS = 5  # items of a list / keys of an object echoed back
ECHO_DEPTH = 2


class BodyRefused(Exception):
    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyRefused(413, f"body: is {int(declared)} bytes, larger than the limit of {limit} bytes")
    chunks: list[bytes] = []
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise BodyRefused(413, f"body: is more than {limit} bytes, the limit")
            chunks.append(chunk)
    except ClientDisconnect:
        raise BodyRefused(400, "body: the client disconnected during the upload") from None
    return b"".join(chunks)


async def guard_json_body(request: Request, limits: JsonLimits = JSON_BODY_LIMITS) -> JSONResponse | None:
    """None when the body may go on to FastAPI (already parsed and cached); else the 4xx answer."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    if request.headers.get("content-type", "").lower().startswith("multipart/"):
        return None  # uploads are streamed and limited by `uploads.read_multipart`
    try:
        body = await _read_limited(request, limits.max_bytes)
    except BodyRefused as exc:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
    request._body = body  # Starlette's cache: FastAPI reads the body from here
    if not body:
        return None
    try:
        document = loads(body, source="body", limits=limits)
    except JsonInputError as exc:
        if exc.kind == "size":
            return JSONResponse({"detail": str(exc)}, status_code=413)
        if exc.kind == "syntax":  # FastAPI's own entry for malformed JSON, as the contract has it
            entry = {"type": "json_invalid", "loc": ["body", exc.position], "msg": "JSON decode error",
                     "input": {}, "ctx": {"error": exc.reason}}  # fmt: skip
        else:
            entry = {"type": "json_invalid", "loc": ["body"], "msg": exc.reason, "input": None}
        return JSONResponse({"detail": [entry]}, status_code=422)
    request._json = document  # Starlette's cache: FastAPI validates this document, not a second parse
    return None


def short_echo(value: Any, depth: int = ECHO_DEPTH) -> Any:
    """`value` made JSON-safe and small: excerpts of long strings, text for NaN/Infinity/surrogates."""
    if isinstance(value, str):
        text = value.encode("utf-8", "backslashreplace").decode("utf-8")
        if len(text) > ECHO_CHARS:
            return f"{text[:ECHO_CHARS]}... ({len(value)} characters)"
        return text
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, dict):
        if depth <= 0:
            return f"<object of {len(value)} keys>"
        items = list(value.items())
        out = {short_echo(str(k), 0): short_echo(v, depth - 1) for k, v in items[:ECHO_ITEMS]}
        if len(items) > ECHO_ITEMS:
            out["..."] = f"{len(items) - ECHO_ITEMS} more keys"
        return out
    if isinstance(value, (list, tuple)):
        if depth <= 0:
            return f"<list of {len(value)} items>"
        out_list = [short_echo(v, depth - 1) for v in list(value)[:ECHO_ITEMS]]
        if len(value) > ECHO_ITEMS:
            out_list.append(f"... {len(value) - ECHO_ITEMS} more items")
        return out_list
    return short_echo(repr(value), 0)


def short_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for error in errors:
        entry = dict(error)
        if "input" in entry:
            entry["input"] = short_echo(entry["input"])
        if "ctx" in entry:
            entry["ctx"] = {k: short_echo(v if not isinstance(v, Exception) else str(v), 0)
                            for k, v in entry["ctx"].items()}  # fmt: skip
        out.append(jsonable_encoder(entry))
    return out


async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 shape (`{"detail": [{type, loc, msg, input, ctx}]}`) with short, safe echoes."""
    return JSONResponse({"detail": short_errors(exc.errors())}, status_code=422)
