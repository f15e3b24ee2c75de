"""`musicgen-pipeline demo`: render examples/soundtrack.json through the pipeline, offline.

MUSICGEN_MODEL and DEMUCS_MODEL default to ``tiny-random`` here (and only here), so the demo needs no
download; set them to real models (on a GPU) to hear music. Everything else is the real pipeline:
the run is recorded in the Dagster instance and shows in the UI.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from musicgen_pipeline.errors import InputError

REPO = Path(__file__).resolve().parents[2]


def _find(name: str) -> Path:
    """`name` in the source checkout, else in the working directory (an installed package, the image)."""
    for base in (REPO, Path.cwd()):
        if (base / name).exists():
            return base / name
    return REPO / name


EXAMPLE = _find("examples/soundtrack.json")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="render examples/soundtrack.json offline (tiny-random models unless MUSICGEN_MODEL/DEMUCS_MODEL are set)",
        description="Render the example 3-scene request through the Dagster pipeline and say where the audio is "
        "and how to open the UI.",
    )
    parser.add_argument(
        "--request", type=Path, default=EXAMPLE, help=f"request to render (default {EXAMPLE})"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("MUSICGEN_MODEL", "tiny-random")
    os.environ.setdefault("DEMUCS_MODEL", "tiny-random")
    if not args.request.exists():
        raise InputError(f"{args.request}: demo request not found (pass --request FILE)")
    from musicgen_pipeline.commands import render
    from musicgen_pipeline.instance import dagster_home
    from musicgen_pipeline.partition_store import PartitionStore
    from musicgen_pipeline.settings import get_settings

    home = dagster_home(get_settings().data_dir)
    print(
        f"demo: rendering {args.request} with MUSICGEN_MODEL={os.environ['MUSICGEN_MODEL']} "
        f"DEMUCS_MODEL={os.environ['DEMUCS_MODEL']} (DAGSTER_HOME={home})",
        file=sys.stderr,
    )
    code = render.run(
        argparse.Namespace(request=args.request, model=None, detach=False, wait=False, json=False)
    )
    if code != 0:
        return code
    settings = get_settings()
    workspace = _find("workspace.yaml")
    # The venv's own `dagster` (the venv need not be activated).
    exe = Path(sys.executable).with_name("dagster")
    dagster = shlex.quote(str(exe)) if exe.exists() else "dagster"
    ui = f"DAGSTER_HOME={shlex.quote(str(home))} MUSICGEN_DATA={shlex.quote(str(settings.data_dir))}"
    ui += (
        f" {dagster} dev -w {shlex.quote(str(workspace))}"
        if workspace.exists()
        else f" {dagster} dev -m musicgen_pipeline.definitions"
    )
    print()
    print(
        f"audio: every file of this render is under {settings.outputs_dir}/ (soundtrack, segments/, stems/, pictures/)"
    )
    print(f"catalog of all renders: {PartitionStore(settings.outputs_dir).catalog_path}")
    print("open the UI (assets, the run, metadata with pictures, checks):")
    print(f"  {ui}")
    print("  then browse http://127.0.0.1:3000 (Assets > soundtrack, or Runs)")
    cli = Path(sys.executable).with_name("musicgen-pipeline")
    serve = shlex.quote(str(cli)) if cli.exists() else "musicgen-pipeline"
    print("listen (soundtrack, every segment and seam stem, the seams drawn on the waveform, the scores):")
    print(
        f"  DAGSTER_HOME={shlex.quote(str(home))} MUSICGEN_DATA={shlex.quote(str(settings.data_dir))} {serve} serve"
    )
    print(
        f"  then browse {settings.listen_url}/listen/ (or follow the `listen` link of any audio asset in the UI)"
    )
    return 0
