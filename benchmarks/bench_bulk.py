"""Bulk rendering: N requests rendered as N single runs vs as one bulk run, through the pipeline.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_bulk.py [--counts 2,4,8] [--scenes 2]
        [--seconds 6] [--repeats 2] [--size small|tiny] [--max-batch 8] [--level pipeline|model]
        [--quality-loop] [--threads N]

Each request is `--scenes` scenes of `--seconds` s with token-level continuation (scene k continues the
codes of scene k-1), its own prompts and seed. `--level pipeline` (default), each side on a fresh data
folder and Dagster instance, the model loaded once before timing: (a) "single": every request
registered and rendered by its own run (`launch.materialize`, what `musicgen-pipeline render X.json`
runs), one after another; (b) "bulk": all registered and rendered as one bulk (`launch.materialize_bulk`,
what `render A.json B.json ...` runs: the `bulk_generation` job over the range, then each request's own
render run). Every asset of every request is made on both sides; the soundtrack files of (a) and (b)
must be byte-identical (checked, printed). `--level model`: the same generation asked of MusicGen
directly (scene by scene per request vs scene k of every request per `generate_rows` call).

Model: the released musicgen-small architecture with random weights (nothing downloaded), fp32 on CPU,
guidance 3, top-k 250; `--size tiny` for a smoke run. The quality loop is off unless `--quality-loop`
(random weights fail seams at random: regeneration counts would dominate), stems are the DSP splitter
(no Demucs) and the requests are neither beat-aligned nor tempo-matched (no generation margins), so the
comparison is about generation; everything else every render does (beats, seams, mix, loudness,
pictures, report, catalog) is done on both sides. Repeats are interleaved (a, b, a, b, ...)
and the minimum kept; wall seconds and process CPU seconds are both printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from musicgen_pipeline.models.musicgen import GeneratedAudio, GenerationRow, MusicGen
from musicgen_pipeline.models.params import GenerationParams
from musicgen_pipeline.models.tiny import musicgen_from_config, musicgen_small_config, tiny_musicgen

PROMPTS = [
    "calm piano at dawn",
    "epic orchestral battle",
    "lofi hip hop beat",
    "jazz trio late night",
    "warm acoustic folk guitar",
    "dark techno pulse",
    "gentle strings and choir",
    "upbeat house dance",
]
PARAMS = GenerationParams(top_k=250, guidance_scale=3.0)


def request_prompts(request: int, scenes: int) -> list[str]:
    return [f"{PROMPTS[(request + k) % len(PROMPTS)]}, scene {k}" for k in range(scenes)]


def render_single(mg: MusicGen, n: int, scenes: int, seconds: float) -> list[list[GeneratedAudio]]:
    out = []
    for r in range(n):
        prompts, previous, tracks = request_prompts(r, scenes), None, []
        for k in range(scenes):
            row = GenerationRow(prompts[k], 1000 * r + k, seconds, continue_from=previous)
            previous = mg.generate_rows([row], params=PARAMS)[0]
            tracks.append(previous)
        out.append(tracks)
    return out


def render_bulk(
    mg: MusicGen, n: int, scenes: int, seconds: float, max_batch: int
) -> list[list[GeneratedAudio]]:
    out: list[list[GeneratedAudio]] = [[] for _ in range(n)]
    for k in range(scenes):  # one plan step: every request's scene k
        rows = [
            GenerationRow(
                request_prompts(r, scenes)[k], 1000 * r + k, seconds, continue_from=out[r][-1] if k else None
            )
            for r in range(n)
        ]
        for r, result in enumerate(mg.generate_rows(rows, params=PARAMS, max_batch=max_batch)):
            out[r].append(result)
    return out


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def identical(a: list[list[GeneratedAudio]], b: list[list[GeneratedAudio]]) -> bool:
    return all(
        np.array_equal(x.codes, y.codes) and np.array_equal(x.audio.samples, y.audio.samples)
        for ra, rb in zip(a, b, strict=True)
        for x, y in zip(ra, rb, strict=True)
    )


BENCH_MODEL_ID = "bench-random"  # the id the requests name; the loader hands out the model built here


def bench_request(r: int, scenes: int, seconds: float) -> dict:
    return {
        "name": f"bench request {r}",
        "base_prompt": "soundtrack",
        "scenes": [{"mood": p, "duration": seconds} for p in request_prompts(r, scenes)],
        "crossfade_duration": min(1.0, seconds / 2),
        "seed": 1000 * r,
        "model": BENCH_MODEL_ID,
        "scene_conditioning": "continuation",
        "stem_aware": False,
        "beat_aligned": False,  # no beat-snapping slack, no tempo-stretch margin: each scene is generated
        "tempo_match": False,  # --seconds + half a crossfade per seam, the same on both sides
    }


def _pipeline_env(mg: MusicGen, args: argparse.Namespace) -> None:
    """Settings of both sides, and the loader handing out `mg` for BENCH_MODEL_ID (loaded once)."""
    from musicgen_pipeline.models import loaders

    os.environ.update(
        {
            "MUSICGEN_MODEL": BENCH_MODEL_ID,
            "MUSICGEN_DEVICE": "cpu",
            "MUSICGEN_DTYPE": "float32",
            "MUSICGEN_MAX_BATCH": str(args.max_batch),
            "USE_QUALITY_LOOP": "true" if args.quality_loop else "false",
            "STEM_SOURCE": "dsp",
            "MIN_FREE_DISK_MB": "0",
        }
    )
    real = loaders.load_musicgen
    loaders.load_musicgen = lambda model_id, *a, **k: (
        mg if model_id == BENCH_MODEL_ID else real(model_id, *a, **k)
    )


def render_pipeline(n: int, args: argparse.Namespace, bulk: bool) -> dict[str, bytes]:
    """Render N requests on a fresh data folder and instance; each request's soundtrack bytes."""
    import dagster as dg

    from musicgen_pipeline.instance import instance_yaml, register_request
    from musicgen_pipeline.launch import materialize, materialize_bulk
    from musicgen_pipeline.partition_store import PartitionStore
    from musicgen_pipeline.request import parse_request

    root = Path(tempfile.mkdtemp(prefix="bench_bulk_"))
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(instance_yaml(), encoding="utf-8")
    os.environ["MUSICGEN_DATA"], os.environ["DAGSTER_HOME"] = str(root / "data"), str(home)
    store = PartitionStore.for_data_dir(root / "data")
    requests = [parse_request(bench_request(r, args.scenes, args.seconds)) for r in range(n)]
    with dg.DagsterInstance.get() as instance:
        keys = [register_request(instance, store, request) for request in requests]
        if bulk:
            results = materialize_bulk(instance, store, keys, max_batch=args.max_batch, log_level="ERROR")
        else:
            results = {key: materialize(instance, store, key, log_level="ERROR") for key in keys}
    failed = [key for key, result in results.items() if not result.success]
    if failed:
        raise SystemExit(f"{'bulk' if bulk else 'single'} render failed for {failed} (data in {root})")
    return {key: store.soundtrack_file(key).read_bytes() for key in keys}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="2,4,8", help="request counts N, comma-separated")
    parser.add_argument("--scenes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--size", choices=("small", "tiny"), default="small")
    parser.add_argument("--max-batch", type=int, default=8, help="MUSICGEN_MAX_BATCH for the bulk calls")
    parser.add_argument("--level", choices=("pipeline", "model"), default="pipeline")
    parser.add_argument("--quality-loop", action="store_true", help="USE_QUALITY_LOOP on (pipeline level)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    if args.size == "small":
        from musicgen_pipeline.models.tiny import tiny_tokenizer

        model, tokenizer = musicgen_from_config(musicgen_small_config()), tiny_tokenizer()
    else:
        model, tokenizer = tiny_musicgen("tiny-random")
    mg = MusicGen(model, tokenizer, model_id=f"musicgen-{args.size} (random)", device=torch.device("cpu"),
                  dtype=torch.float32, load_seconds=time.perf_counter() - start)  # fmt: skip
    if args.level == "pipeline":
        _pipeline_env(mg, args)
        # untimed warm-up of both paths (imports, librosa's JIT, Dagster's first instance), short scenes
        warm = argparse.Namespace(**{**vars(args), "seconds": 1.0, "scenes": 2})
        render_pipeline(1, warm, bulk=False), render_pipeline(2, warm, bulk=True)
    print(
        f"{args.level} level; musicgen-{args.size} architecture, random weights, CPU fp32, "
        f"{torch.get_num_threads()} threads; {args.scenes} scenes x {args.seconds:g} s per request, "
        f"continuation; max batch {args.max_batch}; {args.repeats} interleaved repeats, min kept"
    )
    print(f"\n{'N':>3}{'single wall':>13}{'bulk wall':>11}{'ratio':>8}{'single CPU':>12}{'bulk CPU':>10}"
          f"{'ratio':>8}{'audio s/s bulk':>16}  identical")  # fmt: skip
    for n in counts:
        best = {"single": (float("inf"), float("inf")), "bulk": (float("inf"), float("inf"))}
        results = {}
        for _ in range(args.repeats):
            if args.level == "pipeline":
                sides = (
                    ("single", lambda n=n: render_pipeline(n, args, bulk=False)),
                    ("bulk", lambda n=n: render_pipeline(n, args, bulk=True)),
                )
            else:
                sides = (
                    ("single", lambda n=n: render_single(mg, n, args.scenes, args.seconds)),
                    ("bulk", lambda n=n: render_bulk(mg, n, args.scenes, args.seconds, args.max_batch)),
                )
            for name, fn in sides:
                results[name], wall, cpu = timed(fn)
                best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
        if args.level == "pipeline":
            same = results["single"] == results["bulk"]
        else:
            same = identical(results["single"], results["bulk"])
        (sw, sc), (bw, bc) = best["single"], best["bulk"]
        audio = n * args.scenes * args.seconds
        print(f"{n:>3}{sw:>13.1f}{bw:>11.1f}{sw / bw:>7.2f}x{sc:>12.1f}{bc:>10.1f}{sc / bc:>7.2f}x"
              f"{audio / bw:>16.3f}  {'yes' if same else 'NO'}", flush=True)  # fmt: skip
        if not same:
            return 1
    print("\ngoal (issue 9): bulk >= 2.5x faster than single at N = 4, growing with N up to the batch limit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
