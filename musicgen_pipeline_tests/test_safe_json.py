"""The one safe JSON reader: every hostile document is a one-line `JsonInputError`, fast, before the
recursive parser or the validators see it; ordinary documents parse exactly as `json.loads` does."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from musicgen_pipeline.errors import InputError
from musicgen_pipeline.safe_json import JsonInputError, JsonLimits, loads, read_json_file

HOSTILE = [
    ("[" * 100_000 + "]" * 100_000, "nested more than 32 levels deep"),
    ('{"a": ' * 40 + "1" + "}" * 40, "nested more than 32 levels deep"),
    ('{"d": NaN}', "NaN is not a number"),
    ("[Infinity]", "Infinity is not a number"),
    ("[-Infinity]", "-Infinity is not a number"),
    ("[1e999]", "out of range"),
    ("[" + "7" * 4400 + "]", "4400 digits"),
    ('["' + "x" * 10_001 + '"]', "$[0]: a string of 10001 characters is longer than 10000"),
    ('{"scenes": [{"prompt": "\\ud800"}]}', "$.scenes[0].prompt: holds a lone UTF-16 surrogate (\\ud800)"),
    ('{"\\udfff": 1}', "$ key: holds a lone UTF-16 surrogate"),
    (b"\xfe\xff\x00{\x00}", "is UTF-16 text"),
    (b'{"a": "\xc3\x28"}', "is not UTF-8 text (byte 0xc3 at offset 7"),
    ("  \n", "is empty"),
    ('{"a": 1,}', "not valid JSON: Expecting property name"),
]


@pytest.mark.parametrize(("data", "words"), HOSTILE, ids=[str(h[1])[:24] for h in HOSTILE])
def test_hostile_documents_are_one_line_refusals(data: str | bytes, words: str) -> None:
    start = time.perf_counter()
    with pytest.raises(JsonInputError) as caught:
        loads(data, source="req.json")
    assert time.perf_counter() - start < 1.0
    message = str(caught.value)
    assert isinstance(caught.value, InputError)
    assert message.startswith("req.json: ") and words in message and "\n" not in message, message


def test_size_is_refused_before_parsing() -> None:
    limits = JsonLimits(max_bytes=100)
    with pytest.raises(JsonInputError, match="is 101 bytes, larger than the limit of 100 bytes") as caught:
        loads("[" + "1," * 49 + "1]", limits=limits)
    assert caught.value.kind == "size"


def test_ordinary_documents_parse_as_json_does() -> None:
    doc = {
        "base_prompt": 'strings "[{" with brackets } and \\ escapes',
        "scenes": [{"mood": "café ☕", "duration": 12.5}, {"duration": 3}],
        "seed": 2**31 - 1,
        "flags": [True, False, None],
    }
    text = json.dumps(doc, ensure_ascii=False)
    assert loads(text) == doc
    assert loads(b"\xef\xbb\xbf" + text.encode()) == doc  # a UTF-8 byte-order mark is fine
    assert loads("[" * 32 + "]" * 32) == json.loads("[" * 32 + "]" * 32)


def test_read_json_file_reads_no_more_than_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b"[" + b"0," * 3_000_000 + b"0]")
    with pytest.raises(JsonInputError, match=r"big.json: is 6000003 bytes, larger than the limit"):
        read_json_file(big)
    small = tmp_path / "ok.json"
    small.write_text('{"prompt": "x"}', encoding="utf-8")
    assert read_json_file(small) == {"prompt": "x"}
