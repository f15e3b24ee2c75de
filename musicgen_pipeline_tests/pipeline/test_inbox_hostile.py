"""The drop folder under a hostile audit: whatever else is in a tick, every file ends in `accepted/`
with a run or in `rejected/` with a reason; nothing outside the inbox is read; no file is overwritten;
a slow writer's file is never stranded; the same request under two names is one run."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from musicgen_pipeline.inbox import InboxTick, process_inbox
from musicgen_pipeline.request import parse_request
from musicgen_pipeline_tests.pipeline.conftest import three_scene_request, write_json


def _age(path: Path, seconds: float = 60.0) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past), follow_symlinks=False)


def _tick(data_dir: Path, cursor: float = 0.0) -> InboxTick:
    return process_inbox(data_dir, cursor, max_batch=50, settle_seconds=5.0, default_model="tiny-random")


def _report(data_dir: Path, name: str) -> dict:
    return json.loads((data_dir / "inbox" / "rejected" / name).read_text(encoding="utf-8"))


HOSTILE_FILES = [
    ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested more than 32 levels deep"),
    ("nan.json", b'{"prompt": "x", "duration": NaN}', "NaN is not a number"),
    ("digits.json", b'{"prompt": "x", "seed": ' + b"1" * 5000 + b"}", "5000 digits"),
    ("big.json", b'{"prompt": "' + b"x" * 2_000_000 + b'"}', "larger than the limit"),
    ("utf16.json", json.dumps(three_scene_request()).encode("utf-16"), "is UTF-16 text"),
    ("latin1.json", b'{"base_prompt": "caf\xe9"}', "is not UTF-8 text"),
    ("surrogate.json", b'{"prompt": "\\ud800"}', "lone UTF-16 surrogate"),
    ("empty.json", b"", "is empty"),
]


@pytest.mark.parametrize(("name", "data", "words"), HOSTILE_FILES, ids=[h[0] for h in HOSTILE_FILES])
def test_poison_file_is_rejected_and_the_rest_of_the_tick_goes_on(
    data_dir: Path, name: str, data: bytes, words: str
) -> None:
    inbox = data_dir / "inbox"
    inbox.mkdir()
    (inbox / name).write_bytes(data)
    good = write_json(inbox / "good.json", three_scene_request())
    for path in (inbox / name, good):
        _age(path)
    tick = _tick(data_dir)
    assert [p.name for p in tick.accepted] == ["good.json"]
    assert [r.partition_key for r in tick.run_requests] == [
        parse_request(three_scene_request()).partition_key()
    ]
    assert [p.name for p in tick.rejected] == [name]
    error = _report(data_dir, Path(name).stem + ".error.json")["error"]
    assert words in error and "\n" not in error, error
    assert sorted(p.name for p in inbox.iterdir()) == ["accepted", "rejected"]


def test_accepted_files_are_re_emitted_whatever_the_case_of_their_suffix(data_dir: Path) -> None:
    """A tick that crashed after moving files to accepted/ (before Dagster stored its runs)."""
    accepted = data_dir / "inbox" / "accepted"
    upper = write_json(accepted / "UPPER.JSON", three_scene_request(seed=5))
    lower = write_json(accepted / "lower.json", three_scene_request(seed=6))
    tick = _tick(data_dir, cursor=time.time() - 3600)
    assert {r.tags["musicgen/source"] for r in tick.run_requests} == {upper.name, lower.name}
    assert tick.cursor >= upper.stat().st_ctime
    assert _tick(data_dir, cursor=tick.cursor).run_requests == []  # once only


def test_error_report_never_overwrites_a_users_file(data_dir: Path) -> None:
    inbox, rejected = data_dir / "inbox", data_dir / "inbox" / "rejected"
    rejected.mkdir(parents=True)
    users = rejected / "p.error.json"
    users.write_bytes(b"the user's own earlier file")
    (inbox / "p.json").write_text("{broken", encoding="utf-8")
    _age(inbox / "p.json")
    tick = _tick(data_dir)
    assert users.read_bytes() == b"the user's own earlier file"
    [target] = tick.rejected
    assert target.name == "p-1.json" and "not valid JSON" in _report(data_dir, "p-1.error.json")["error"]


def test_same_request_in_differently_named_files_is_one_run(data_dir: Path) -> None:
    inbox = data_dir / "inbox"
    for name in ("monday.json", "copy of monday.json", "MONDAY-2.JSON"):
        _age(write_json(inbox / name, three_scene_request(seed=11)))
    tick = _tick(data_dir)
    assert len(tick.accepted) == 3
    assert {r.run_key for r in tick.run_requests} == {
        parse_request(three_scene_request(seed=11)).partition_key()
    }
    assert len(tick.new_partitions) == 1
    named = write_json(inbox / "x.json", {**three_scene_request(seed=11), "name": "My Trip"})
    _age(named)
    [key] = _tick(data_dir, tick.cursor).new_partitions
    assert key.startswith("my-trip-")  # a name stated in the request is content


def test_links_and_special_files_are_rejected_unread(data_dir: Path, tmp_path: Path) -> None:
    inbox = data_dir / "inbox"
    inbox.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:SECRET-CONTENT\n", encoding="utf-8")
    outside = write_json(tmp_path / "outside.json", three_scene_request(seed=21))
    (inbox / "p.json").symlink_to(secret)
    (inbox / "req.json").symlink_to(outside)
    (inbox / "dangling.json").symlink_to(tmp_path / "nothing-here")
    os.link(outside, inbox / "hard.json")
    os.mkfifo(inbox / "pipe.json")
    (inbox / "folder.json").mkdir()
    for path in inbox.iterdir():
        _age(path)
    started = time.monotonic()
    tick = _tick(data_dir)
    assert time.monotonic() - started < 10  # the FIFO was not opened for reading (that blocks)
    assert tick.run_requests == [] and tick.accepted == []
    assert sorted(p.name for p in tick.rejected) == sorted(
        ["p.json", "req.json", "dangling.json", "hard.json", "pipe.json", "folder.json"]
    )
    rejected = data_dir / "inbox" / "rejected"
    assert (rejected / "p.json").is_symlink()  # the link itself moved, its target untouched
    assert secret.read_text(encoding="utf-8").startswith("root:")
    reports = "".join(p.read_text(encoding="utf-8") for p in rejected.glob("*.error.json"))
    assert "SECRET" not in reports and "root:" not in reports
    assert "is a symbolic link" in _report(data_dir, "p.error.json")["error"]
    assert "hard links" in _report(data_dir, "hard.error.json")["error"]
    assert "named pipe" in _report(data_dir, "pipe.error.json")["error"]
    assert "is a folder" in _report(data_dir, "folder.error.json")["error"]


def test_slow_writer_file_that_becomes_valid_is_rendered(data_dir: Path) -> None:
    """A writer holds the file open, pauses past the settle time, then finishes: the file was rejected
    mid-write; once complete (and settled) it is judged again, accepted and rendered."""
    inbox = data_dir / "inbox"
    inbox.mkdir()
    text = json.dumps(three_scene_request(seed=31))
    path = inbox / "slow.json"
    with path.open("w", encoding="utf-8") as writer:
        writer.write(text[:20])
        writer.flush()
        _age(path)
        first = _tick(data_dir)
        assert [p.name for p in first.rejected] == ["slow.json"]
        writer.write(text[20:])  # the same open file, now in rejected/
    moved = data_dir / "inbox" / "rejected" / "slow.json"
    assert _tick(data_dir, first.cursor).accepted == []  # changed, but not settled yet: left alone
    _age(moved)
    second = _tick(data_dir, first.cursor)
    assert [p.name for p in second.accepted] == ["slow.json"]
    assert [r.partition_key for r in second.run_requests] == [
        parse_request(three_scene_request(seed=31)).partition_key()
    ]
    assert not (data_dir / "inbox" / "rejected" / "slow.error.json").exists()
    assert _tick(data_dir, second.cursor).run_requests == []
