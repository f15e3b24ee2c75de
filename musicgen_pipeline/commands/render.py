"""`musicgen-pipeline render REQUEST.json [MORE.json ...]`: register the requests as partitions and render them.

One file: its partition is materialized (every asset of the render job). Several files: one bulk run
(`launch.materialize_bulk`): their scenes are generated together in batched MusicGen calls (the
``bulk_generation`` job, one run per chunk of at most MUSICGEN_MAX_BATCH requests of one model), then
each request's own render run makes its assets; each request's report is printed, and a request that
fails fails alone (the exit status is 1 when any failed).

The run executes in this process against the configured Dagster instance (DAGSTER_HOME; when unset,
``$MUSICGEN_DATA/dagster_home``), so it shows in the UI afterwards. ``--detach`` starts it in a
background process instead and prints the run id (``--wait`` then follows it to the end). With several
files ``--detach`` prints the bulk run's id and each request's render run id (`launch.start_bulk_detached`:
the renders follow the bulk run in its worker, or, under a Dagster daemon, by the sensor
``render_after_bulk``, whose runs are found by their ``musicgen/bulk_run`` tag: ``--wait`` prints their
ids, in the same ``run ID started (...)`` lines, once the sensor has started them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from musicgen_pipeline.errors import InputError
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.request import load_request
from musicgen_pipeline.settings import Settings, get_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "render",
        help="render a soundtrack request (JSON) through the Dagster pipeline",
        description="Register REQUEST.json as a partition of soundtrack_requests and materialize every asset "
        "of it against the configured Dagster instance; prints the soundtrack path and the transition report. "
        "Several files render as one bulk run (scenes generated together, batched across the requests).",
    )
    parser.add_argument(
        "request",
        type=Path,
        nargs="+",
        help="request JSON file(s) (DESIGN.md section 2); several render as one bulk run",
    )
    parser.add_argument(
        "--model", help="MusicGen model for this request (overrides the request's and MUSICGEN_MODEL)"
    )
    parser.add_argument(
        "--detach", action="store_true", help="start the run in a background process and print its run id"
    )
    parser.add_argument("--wait", action="store_true", help="with --detach: follow the run until it finishes")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def _print_report(store: PartitionStore, key: str, as_json: bool) -> None:
    files = store.files(key)
    folder = files.root
    summary = json.loads(files.summary.read_text(encoding="utf-8"))
    report = json.loads(files.report.read_text(encoding="utf-8"))
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


def preload_models(request: Any, settings: Settings) -> None:
    """Load the models this request needs now (in this process, where the run will execute, so nothing
    is loaded twice): an unavailable model is a one-line error before any run starts."""
    from musicgen_pipeline.resources import MusicGenResource, StemSplitterResource

    model, _ = MusicGenResource().get(settings, request.model)
    if request.melody and not model.is_melody:
        raise InputError(
            f"melody={request.melody!r}: model {model.model_id!r} has no melody conditioning "
            "(use facebook/musicgen-melody, or tiny-random-melody offline)"
        )
    if len(request.scenes) > 1 and request.stem_aware and settings.use_stem_aware_crossfade:
        StemSplitterResource().get(settings)


def _follow(watcher: Any, run_id: str) -> Any:
    """Print each new state of a detached run until it ends; its final progress."""

    def show(progress: Any) -> None:
        line = f"{progress.status}: {progress.steps_done}/{progress.steps_total} steps, {progress.current_step or ''}"
        if progress.queue_position:
            line = f"queued: position {progress.queue_position} in the run queue"
        print(line, file=sys.stderr)

    progress = watcher.wait(run_id, on_change=show)
    if progress is None:
        raise InputError(f"run {run_id} vanished from the instance")
    return progress


def _failure(result: Any) -> str:
    """One line: why an in-process run failed."""
    from musicgen_pipeline.launch import root_cause

    failure = next((e for e in result.all_events if e.is_step_failure), None)
    error = failure.step_failure_data.error if failure else None
    where = f" in step {failure.step_key}" if failure else ""
    return f"run {result.run_id} failed{where}: {root_cause(error) if error else ''}"


def _load(path: Path, model: str | None, settings: Settings) -> Any:
    request = load_request(path, default_model=model or settings.musicgen_model)
    if model:
        from dataclasses import replace

        request = replace(request, model=model)
    return request


def run_bulk(args: argparse.Namespace, settings: Settings) -> int:
    """Several request files as one bulk run; each request's report (or error) in turn."""
    from musicgen_pipeline.bulk_plan import order_by_model
    from musicgen_pipeline.instance import get_instance, register_request
    from musicgen_pipeline.launch import materialize_bulk

    store = PartitionStore(settings.outputs_dir)
    requests = {str(path): _load(path, args.model, settings) for path in args.request}
    check_free_space_for(settings, f"bulk render of {len(requests)} requests")
    by_key = {r.partition_key(): r for r in requests.values()}
    models = {key: r.model or settings.musicgen_model for key, r in by_key.items()}
    instance = get_instance(settings.data_dir)
    keys = [register_request(instance, store, by_key[k]) for k in order_by_model(by_key, models)]
    print(
        f"{len(keys)} partition(s) registered for one bulk run; instance {instance.root_directory}",
        file=sys.stderr,
    )
    if args.detach:
        return _detach_bulk(args, settings, instance, store, keys, requests)
    for request in {models[k]: by_key[k] for k in keys}.values():  # each model once
        preload_models(request, settings)
    results = materialize_bulk(instance, store, keys, max_batch=settings.musicgen_max_batch)
    outcomes = {key: None if results[key].success else _failure(results[key]) for key in keys}
    return _print_bulk(store, requests, outcomes, args.json)


def _print_bulk(
    store: PartitionStore, requests: dict[str, Any], errors: dict[str, str | None], as_json: bool
) -> int:
    """Each request's report (or its error, `errors[key]`) under ``== FILE (partition KEY)``; 1 when
    any failed."""
    for path, request in requests.items():
        key = request.partition_key()
        print(f"== {path} (partition {key})")
        if errors[key] is not None:
            print(f"error: {path}: {errors[key]}", file=sys.stderr)
            continue
        _print_report(store, key, as_json)
    failed = [key for key, error in errors.items() if error is not None]
    print(f"bulk: {len(errors) - len(failed)} of {len(errors)} rendered", file=sys.stderr)
    return 1 if failed else 0


def _detach_bulk(
    args: argparse.Namespace,
    settings: Settings,
    instance: Any,
    store: PartitionStore,
    keys: list[str],
    requests: dict[str, Any],
) -> int:
    """``render --detach A.json B.json ...``: the bulk run(s) and each request's render run detached;
    prints their ids (``--wait``: follows them and prints each report)."""
    from musicgen_pipeline.launch import QueuePolicy, RunWatcher, start_bulk_detached
    from musicgen_pipeline.naming import BULK_RUN_TAG

    paths: dict[str, str] = {}
    for path, request in requests.items():
        paths.setdefault(request.partition_key(), path)
    policy = QueuePolicy(mode=settings.run_queue, code_location=settings.dagster_code_location)
    bulks = start_bulk_detached(instance, store, keys, max_batch=settings.musicgen_max_batch, policy=policy)
    for bulk in bulks:
        print(f"bulk run {bulk.run_id} started: scenes of {len(bulk.keys)} request(s) generated together")
        _print_renders(bulk.renders, paths, bulk.run_id)
        if bulk.by_sensor:
            print(
                f"  render runs of {', '.join(bulk.keys)}: started by the sensor render_after_bulk when it ends "
                f"(tag {BULK_RUN_TAG}={bulk.run_id})"
            )
    print(
        f"watch them under Runs in the UI on instance {instance.root_directory}; logs in "
        f"{store.outputs_dir}/<partition>/runs/<run id>.log",
        file=sys.stderr,
    )
    if not args.wait:
        return 0
    watcher = RunWatcher(instance, store)
    render_ids: dict[str, str] = {}
    for bulk in bulks:
        progress = _follow(watcher, bulk.run_id)
        print(f"bulk run {bulk.run_id} {progress.status}", file=sys.stderr)
        if not bulk.by_sensor:
            render_ids.update(bulk.renders)
            continue
        found = _sensor_renders(instance, bulk.run_id, bulk.keys)
        _print_renders(found, paths, bulk.run_id)  # as the renders a bulk's own worker runs are
        render_ids.update(found)
    errors: dict[str, str | None] = {}
    for key in keys:
        if key not in render_ids:
            errors[key] = "no render run followed its bulk run (is the sensor render_after_bulk running?)"
            continue
        progress = _follow(watcher, render_ids[key])
        ok = progress.status == "succeeded"
        errors[key] = None if ok else f"run {render_ids[key]} {progress.status}: {progress.error}"
    return _print_bulk(store, requests, errors, args.json)


def _print_renders(renders: dict[str, str], paths: dict[str, str], bulk_id: str) -> None:
    """One ``run ID started (FILE, partition KEY; after bulk run ID8)`` line per render run."""
    for key, run_id in renders.items():
        print(f"run {run_id} started ({paths[key]}, partition {key}; after bulk run {bulk_id[:8]})")


def _sensor_renders(instance: Any, bulk_id: str, keys: list[str], timeout: float = 120.0) -> dict[str, str]:
    """The render runs the daemon's sensors started after bulk run `bulk_id` (partition key -> run id),
    waiting up to `timeout` seconds for all of them to exist."""
    import time

    import dagster as dg

    from musicgen_pipeline.naming import BULK_RUN_TAG

    deadline = time.monotonic() + timeout
    while True:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={BULK_RUN_TAG: bulk_id}))
        found = {run.tags.get("dagster/partition"): run.run_id for run in runs}
        if set(keys) <= found.keys() or time.monotonic() > deadline:
            return {key: found[key] for key in keys if key in found}
        time.sleep(2.0)


def check_free_space_for(settings: Settings, what: str) -> None:
    from musicgen_pipeline.retention import check_free_space

    check_free_space(settings.data_dir, settings.min_free_bytes, what)


def run(args: argparse.Namespace) -> int:
    from musicgen_pipeline.instance import get_instance, register_request
    from musicgen_pipeline.launch import QueuePolicy, RunWatcher, materialize, start_run_detached

    settings = get_settings()
    if len(args.request) > 1:
        return run_bulk(args, settings)
    args.request = args.request[0]
    store = PartitionStore(settings.outputs_dir)
    request = _load(args.request, args.model, settings)
    check_free_space_for(settings, f"render of {args.request}")
    instance = get_instance(settings.data_dir)
    key = register_request(instance, store, request)
    print(f"partition {key} registered; instance {instance.root_directory}", file=sys.stderr)
    if args.detach:
        policy = QueuePolicy(mode=settings.run_queue, code_location=settings.dagster_code_location)
        run_id = start_run_detached(instance, store, key, policy=policy)  # waits its turn in the run queue
        print(f"run {run_id} started")
        if not args.wait:
            return 0
        progress = _follow(RunWatcher(instance, store), run_id)
        if progress.status != "succeeded":
            print(f"error: run {run_id} {progress.status}: {progress.error}", file=sys.stderr)
            return 1
        _print_report(store, key, args.json)
        return 0
    preload_models(request, settings)
    result = materialize(instance, store, key)
    if not result.success:
        print(f"error: {_failure(result)}", file=sys.stderr)
        return 1
    print(f"run {result.run_id} succeeded", file=sys.stderr)
    _print_report(store, key, args.json)
    return 0
