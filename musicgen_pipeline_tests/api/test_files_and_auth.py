"""Path resolution of /files (traversal, encoded traversal, symlinks) and the API-key comparison."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from musicgen_pipeline.api.auth import INVALID_KEY, MISSING_KEY, check_api_key, keys_match
from musicgen_pipeline.api.files import FileAccessError, resolve_output_file

JOB = "0b7c6a8e-3f1d-4c2b-9a5e-6d4f3c2b1a09"


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    root = tmp_path / "outputs"
    (root / "part-1").mkdir(parents=True)
    (root / "part-1" / "soundtrack.wav").write_bytes(b"RIFF")
    (root / "part-1" / "request.json").write_text("{}")
    (tmp_path / "secret.wav").write_bytes(b"secret")
    os.symlink(tmp_path / "secret.wav", root / "link.wav")
    return root


def _lookup(outputs: Path):
    def lookup(name: str) -> Path | None:
        return outputs / "part-1" / "soundtrack.wav" if name == f"{JOB}_soundtrack.wav" else None

    return lookup


def _status(outputs: Path, name: str) -> int:
    try:
        resolve_output_file(outputs, name, _lookup(outputs))
    except FileAccessError as exc:
        return exc.status_code
    return 200


def test_flat_names_map_to_partition_files(outputs: Path) -> None:
    path = resolve_output_file(outputs, f"{JOB}_soundtrack.wav", _lookup(outputs))
    assert path == (outputs / "part-1" / "soundtrack.wav").resolve()
    assert _status(outputs, "part-1/soundtrack.wav") == 200


@pytest.mark.parametrize(
    "name",
    [
        "../secret.wav",
        "../../etc/passwd",
        "..%2fsecret.wav",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2fsecret.wav",
        "%252e%252e%252fsecret.wav",  # double-encoded
        "..\\secret.wav",
        "..%5csecret.wav",
        "/etc/passwd",
        "%2fetc%2fpasswd",
        "part-1/../../secret.wav",
        "link.wav",  # a symlink inside outputs pointing outside
        "soundtrack.wav\x00.txt",
    ],
)
def test_anything_outside_outputs_is_denied(outputs: Path, name: str) -> None:
    assert _status(outputs, name) == 403


@pytest.mark.parametrize(
    "name", [f"{JOB}_drums.wav", "nothing.wav", "part-1/missing.wav", "part-1/request.json"]
)
def test_missing_or_non_audio_files_are_not_found(outputs: Path, name: str) -> None:
    assert _status(outputs, name) == 404


def test_key_rules() -> None:
    assert check_api_key(None, "") is None
    assert check_api_key("anything", "") is None
    assert check_api_key(None, "s3cret") == (401, MISSING_KEY)
    assert check_api_key("", "s3cret") == (401, MISSING_KEY)
    assert check_api_key("wrong", "s3cret") == (403, INVALID_KEY)
    assert check_api_key("s3cret-longer", "s3cret") == (403, INVALID_KEY)
    assert check_api_key("s3cret", "s3cret") is None
    assert MISSING_KEY == "Missing X-API-Key header" and INVALID_KEY == "Invalid API key"


def test_keys_are_compared_as_fixed_length_digests() -> None:
    """Different lengths, unicode: equality only, through hmac.compare_digest of SHA-256 digests."""
    assert keys_match("ключ", "ключ")
    assert not keys_match("a", "a" * 1000)
    assert not keys_match("", "x")
