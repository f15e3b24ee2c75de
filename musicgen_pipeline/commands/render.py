"""`musicgen-pipeline render REQUEST.json`: register the request as a partition and materialize it.

The run executes in this process against the configured Dagster instance (DAGSTER_HOME; when unset,
``$MUSICGEN_DATA/dagster_home``), so it shows in the UI afterwards. ``--detach`` starts it in a
background process instead and prints the run id (``--wait`` then follows it to the end).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from musicgen_pipeline.errors import InputError
from musicgen_pipeline.request import SoundtrackRequest, parse_request
from musicgen_pipeline.safe_json import read_json_file


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "render",
        help="render a soundtrack request (JSON) through the Dagster pipeline",
        description="Register REQUEST.json as a partition of soundtrack_requests and materialize every asset "
        "of it against the configured Dagster instance; prints the soundtrack path and the transition report.",
    )
    parser.add_argument("request", type=Path, help="request JSON file (DESIGN.md section 2)")
    parser.add_argument(
        "--model", help="MusicGen model for this request (overrides the request's and MUSICGEN_MODEL)"
    )
    parser.add_argument(
        "--detach", action="store_true", help="start the run in a background process and print its run id"
    )
    parser.add_argument("--wait", action="store_true", help="with --detach: follow the run until it finishes")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def _print_report(key: str, as_json: bool) -> None:
    from musicgen_pipeline.launch import partition_dir

    folder = partition_dir(key)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    report = json.loads((folder / "transition_report.json").read_text(encoding="utf-8"))
    if as_json:
        print(json.dumps({"summary": summary, "transition_report": report}, indent=2))
        return
    print(f"soundtrack: {summary['soundtrack_path']}")
    print(
        f"  {summary['duration_seconds']:.2f} s (requested {summary['requested_seconds']:g} s in {summary['scenes']} "
        f"scene(s)), {summary['target_bpm']:.1f} BPM, {summary['loudness_lufs']} LUFS, model {summary['model']}, "
        f"seed {summary['seed']}, {summary['total_seconds']:.1f} s wall"
    )
    print(f"  partition {key}; files in {folder}")
    transitions = report["transitions"]
    if transitions:
        print("transition report:")
        print("  seam   at(s)  mfcc_sim   flux  chroma  energy  verdict")
        for t in transitions:
            verdict = "pass" if t["passed"] else "FAIL: " + "; ".join(t["failures"])
            print(
                f"  {t['index']:>4} {t['boundary_time']:>7.2f} {t['mfcc_similarity']:>9.3f} {t['spectral_flux']:>6.1f} "
                f"{t['chroma_correlation']:>7.3f} {t['energy_ratio']:>7.2f}  {verdict}"
            )
    regen = [s for s in report["quality_loop"]["scenes"] if s["regenerations"]]
    for s in regen:
        state = "kept best attempt (none passed)" if s["exhausted"] else "passed"
        print(f"  scene {s['index']}: regenerated {s['regenerations']}x, {state}, seed {s['seed']}")


def _root_cause(error: Any) -> str:
    """The user exception's one-line message under Dagster's wrappers."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return " ".join(str(error.message).split())


def preload_models(request: Any) -> None:
    """Load the models this request needs now (in this process, where the run will execute, so nothing
    is loaded twice): an unavailable model is a one-line error before any run starts."""
    from musicgen_pipeline.resources import MusicGenResource, StemSplitterResource
    from musicgen_pipeline.settings import get_settings

    model, _ = MusicGenResource().get(request.model)
    if request.melody and not model.is_melody:
        raise InputError(
            f"melody={request.melody!r}: model {model.model_id!r} has no melody conditioning "
            "(use facebook/musicgen-melody, or tiny-random-melody offline)"
        )
    if len(request.scenes) > 1 and request.stem_aware and get_settings().use_stem_aware_crossfade:
        StemSplitterResource().get()


def read_request_file(path: Path) -> SoundtrackRequest:
    """The request in `path`, read by the one safe JSON reader (size, encoding, depth, numbers, strings):
    every problem is a one-line `InputError`; the file's stem names a request without ``name``."""
    if not path.exists():
        raise InputError(f"{path}: request file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a request file")
    try:
        raw = read_json_file(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the request file ({exc.strerror or exc})") from None
    return parse_request(raw, source=str(path), name=path.stem)


def run(args: argparse.Namespace) -> int:
    from musicgen_pipeline.launch import (
        get_instance,
        materialize,
        register_request,
        run_progress,
        start_run_detached,
    )

    request = read_request_file(args.request)
    if args.model:
        from dataclasses import replace

        request = replace(request, model=args.model)
    instance = get_instance()
    key = register_request(instance, request)
    print(f"partition {key} registered; instance {instance.root_directory}", file=sys.stderr)
    if args.detach:
        run_id = start_run_detached(instance, key)
        print(f"run {run_id} started")
        if not args.wait:
            return 0
        last = None
        while True:
            progress = run_progress(instance, run_id)
            if progress is None:
                raise InputError(f"run {run_id} vanished from the instance")
            line = f"{progress.status}: {progress.steps_done}/{progress.steps_total} steps, {progress.current_step or ''}"
            if line != last:
                print(line, file=sys.stderr)
                last = line
            if progress.status in ("succeeded", "failed", "canceled"):
                break
            time.sleep(1.0)
        if progress.status != "succeeded":
            print(f"error: run {run_id} {progress.status}: {progress.error}", file=sys.stderr)
            return 1
        _print_report(key, args.json)
        return 0
    preload_models(request)
    result = materialize(instance, key)
    if not result.success:
        failure = next((e for e in result.all_events if e.is_step_failure), None)
        error = failure.step_failure_data.error if failure else None
        where = f" in step {failure.step_key}" if failure else ""
        print(
            f"error: run {result.run_id} failed{where}: {_root_cause(error) if error else ''}",
            file=sys.stderr,
        )
        return 1
    print(f"run {result.run_id} succeeded", file=sys.stderr)
    _print_report(key, args.json)
    return 0
