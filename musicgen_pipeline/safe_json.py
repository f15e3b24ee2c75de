"""The one reader for JSON that comes from outside: request files, the inbox, catalogue cells, REST bodies.

`loads(data, source=..., limits=...)` returns the decoded document or raises `JsonInputError`, an
`InputError` whose message is one line naming the source and the problem. Everything is checked
before or while parsing, so no input can make the parser recurse, allocate without bound or hand a
value downstream that breaks later:

- size: more than `limits.max_bytes` bytes is refused before decoding or parsing;
- encoding: UTF-8 only (a UTF-8 byte-order mark is allowed); UTF-16/32 byte-order marks and invalid
  bytes are named (offset and byte);
- nesting: arrays/objects nested deeper than `limits.max_depth` are refused by a linear scan before
  the recursive parser runs (`[[[[...` of 100 000 levels is a one-line refusal, not `RecursionError`);
- numbers: `NaN`, `Infinity`, `-Infinity`, literals longer than `limits.max_number_chars` characters
  and floats that overflow to infinity (`1e999`);
- strings: longer than `limits.max_string_chars`, or holding a lone UTF-16 surrogate (`"\\ud800"`),
  which no file or response can encode. The message gives the JSON path (`$.scenes[0].prompt`).

Pure Python; no dagster, no settings: callers pass limits.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from musicgen_pipeline.errors import InputError

__all__ = ["DEFAULT_LIMITS", "JsonInputError", "JsonLimits", "decode_utf8", "loads", "read_json_file"]


@dataclass(frozen=True)
class JsonLimits:
    """Bounds for one JSON document (defaults fit every request this project accepts, many times over)."""

    max_bytes: int = 1024 * 1024  # 1 MiB; a 100-scene request with 500-character prompts is ~60 kB
    max_depth: int = 32  # a request needs 4 levels ({"requests": [{"scenes": [{...}]}]})
    max_string_chars: int = 10_000  # prompts are limited to 500, paths to 4096
    max_number_chars: int = 100  # digits in one number literal


DEFAULT_LIMITS = JsonLimits()


class JsonInputError(InputError):
    """A JSON document refused before or while parsing; `reason` is the problem without the source."""

    def __init__(
        self, reason: str, source: str | None = None, *, kind: str = "json", position: int = 0
    ) -> None:
        self.reason = reason
        self.source = source
        self.kind = kind  # "size" (too large), "encoding", "empty", "syntax" (malformed) or "json" (a limit)
        self.position = position  # character offset of a syntax error
        super().__init__(f"{source}: {reason}" if source else reason)


_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
# A JSON string literal, unrolled so a long string is matched without backtracking.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SURROGATE = re.compile("[\ud800-\udfff]")


def decode_utf8(data: bytes, source: str | None = None) -> str:
    """`data` as text: UTF-8 (BOM allowed); anything else is a one-line `JsonInputError`."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise JsonInputError(f"is {name} text; save it as UTF-8", source, kind="encoding")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        raise JsonInputError(
            f"is not UTF-8 text (byte 0x{bad} at offset {exc.start}: {exc.reason})", source, kind="encoding"
        ) from None


def _nesting_depth(text: str, limit: int) -> int:
    """Deepest array/object nesting in `text`, counting stops just past `limit` (linear, no recursion)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parsers(limits: JsonLimits, source: str | None) -> dict[str, Any]:
    def constant(name: str) -> Any:
        raise JsonInputError(f"{name} is not a number JSON allows (use a finite number)", source)

    def integer(literal: str) -> int:
        if len(literal) > limits.max_number_chars:
            raise JsonInputError(
                f"a number of {len(literal)} digits is longer than {limits.max_number_chars}", source
            )
        return int(literal)

    def real(literal: str) -> float:
        if len(literal) > limits.max_number_chars:
            raise JsonInputError(
                f"a number of {len(literal)} characters is longer than {limits.max_number_chars}", source
            )
        value = float(literal)
        if value in (float("inf"), float("-inf")):
            raise JsonInputError(
                f"the number {_short(literal)} is out of range (overflows to infinity)", source
            )
        return value

    return {"parse_constant": constant, "parse_int": integer, "parse_float": real}


def _check_strings(document: Any, limits: JsonLimits, source: str | None) -> None:
    """Walk the (depth-bounded) document: no over-long string, no lone surrogate, keys included."""
    stack: list[tuple[str, Any]] = [("$", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            strings = [(path, value)]
        elif isinstance(value, dict):
            strings = [(f"{path} key", k) for k in value]
            stack.extend((f"{path}.{_short(k)}", v) for k, v in value.items())
        elif isinstance(value, list):
            strings = []
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))
        else:
            continue
        for where, text in strings:
            if len(text) > limits.max_string_chars:
                raise JsonInputError(
                    f"{where}: a string of {len(text)} characters is longer than {limits.max_string_chars}",
                    source,
                )
            found = _SURROGATE.search(text)
            if found:
                raise JsonInputError(
                    f"{where}: holds a lone UTF-16 surrogate (\\u{ord(found.group()):04x}), "
                    "which is not text",
                    source,
                )


def loads(data: bytes | str, *, source: str | None = None, limits: JsonLimits = DEFAULT_LIMITS) -> Any:
    """The JSON document in `data` (bytes are decoded as UTF-8), within `limits`; else `JsonInputError`."""
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise JsonInputError(
            f"is {size} bytes, larger than the limit of {limits.max_bytes} bytes", source, kind="size"
        )
    text = decode_utf8(data, source) if isinstance(data, bytes) else data
    if not text.strip():
        raise JsonInputError("is empty (expected a JSON document)", source, kind="empty")
    depth = _nesting_depth(text, limits.max_depth)
    if depth > limits.max_depth:
        raise JsonInputError(f"is nested more than {limits.max_depth} levels deep", source)
    try:
        document = json.loads(text, **_parsers(limits, source))
    except json.JSONDecodeError as exc:
        raise JsonInputError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            source,
            kind="syntax",
            position=exc.pos,
        ) from None
    except RecursionError:  # cannot happen after the depth scan; kept so no input reaches a traceback
        raise JsonInputError(f"is nested more than {limits.max_depth} levels deep", source) from None
    _check_strings(document, limits, source)
    return document


def read_json_file(
    path: str | Path, *, source: str | None = None, limits: JsonLimits = DEFAULT_LIMITS
) -> Any:
    """Read and parse one JSON file, refusing it by size before reading it whole."""
    path = Path(path)
    shown = source if source is not None else str(path)
    with path.open("rb") as handle:
        data = handle.read(limits.max_bytes + 1)
        if len(data) > limits.max_bytes:
            size = max(len(data), _size(handle))
            raise JsonInputError(
                f"is {size} bytes, larger than the limit of {limits.max_bytes} bytes", shown, kind="size"
            )
    return loads(data, source=shown, limits=limits)


def _size(handle: Any) -> int:
    try:
        return os.fstat(handle.fileno()).st_size
    except OSError:
        return 0
