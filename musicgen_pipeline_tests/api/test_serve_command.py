"""`musicgen-pipeline serve` argument handling (the server itself runs in the contract tests)."""

from __future__ import annotations

import pytest

from musicgen_pipeline.cli import build_parser, main


def test_defaults_are_loopback_port_8000() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port) == ("127.0.0.1", 8000)


def test_a_bad_port_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: --port 70000: must be between 0 and 65535"
