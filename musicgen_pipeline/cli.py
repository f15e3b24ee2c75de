"""The `musicgen-pipeline` command line.

Each sub-command lives in its own module under `musicgen_pipeline.commands` and exposes
`register(subparsers)`, which adds its parser and sets `func(args) -> int`. Bad input never shows a
traceback: an `InputError` (or a missing model) prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from musicgen_pipeline import __version__
from musicgen_pipeline.errors import InputError, ModelUnavailableError

# Order here is the order in `--help`.
COMMAND_MODULES = (
    "render",
    "demo",
    "join",
    "analyze",
    "generate",
    "separate",
    "serve",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musicgen-pipeline",
        description="Render text prompts into long-form music soundtracks with seamless transitions.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"musicgen_pipeline.commands.{name}")
        except ModuleNotFoundError as exc:
            # A command whose module is not written yet is simply absent; any other missing
            # module (a broken install) must surface.
            if exc.name == f"musicgen_pipeline.commands.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (InputError, ModelUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader closed the pipe early (`... | head`): stop quietly, not with a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
