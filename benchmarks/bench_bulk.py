"""Bulk rendering: N requests rendered as N single runs vs as one bulk run, through the pipeline.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_bulk.py [--counts 2,4,8] [--scenes 2]
        [--seconds 6] [--repeats 2] [--size small|medium|tiny] [--max-batch 8] [--level pipeline|model]
        [--quality-loop] [--threads N] [--device auto|cpu|cuda] [--dtype auto|float32|float16|bfloat16]
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_bulk.py --level model --sweep [--batches 1,2,4,8]
        [--size medium] [--device cuda] [--seconds 10] [--repeats 2]

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
guidance 3, top-k 250; `--size tiny` for a smoke run, `--size medium` (musicgen-medium's 48-layer
decoder) for a GPU. `--device auto` takes CUDA at the model level when there is one (then fp16 unless
`--dtype`; the model layer compiles its decoding step there). The pipeline level runs on CPU only
(`MUSICGEN_DEVICE=cpu`).

`--sweep` (model level; the GPU half of the issue's benchmark): tokens per second against batch size. For
each batch size b (`--batches`, default 1, 2, 4, ... up to `--max-batch`, i.e. MUSICGEN_MAX_BATCH) one
`generate_rows` call of b fresh rows of `--seconds` s (different prompts and seeds) is timed (CUDA
synchronised; an untimed call per b first, so compilation and CUDA-graph capture are not counted;
repeats interleaved across b, the fastest kept). Tokens = rows x frames x codebooks. It prints per b the
wall seconds, tokens/s, the speed-up over b = 1, the gain over the previous b and (CUDA) the peak memory,
then where throughput stops growing (the first b whose gain over the previous is under 10 %) or that it
still grows at the largest b. The quality loop is off unless `--quality-loop`
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
from musicgen_pipeline.models.tiny import (
    musicgen_from_config,
    musicgen_medium_config,
    musicgen_small_config,
    tiny_musicgen,
)

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


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batch_call(mg: MusicGen, b: int, seconds: float) -> float:
    """Wall seconds of one `generate_rows` call of `b` fresh rows (other prompts and seeds), synchronised."""
    rows = [GenerationRow(f"{PROMPTS[r % len(PROMPTS)]}, take {r}", 7000 + r, seconds) for r in range(b)]
    sync(mg.device)
    start = time.perf_counter()
    mg.generate_rows(rows, params=PARAMS, max_batch=b)
    sync(mg.device)
    return time.perf_counter() - start


GROWTH_MIN = 0.10  # a doubling of the batch that adds less throughput than this: it stopped growing


def sweep(mg: MusicGen, batches: list[int], seconds: float, repeats: int) -> list[dict]:
    """Tokens per second per batch size (interleaved repeats, fastest kept); see the module docstring."""
    cuda = mg.device.type == "cuda"
    for b in batches:  # warm-up: kernels, the compiled step and its CUDA graph for this batch shape
        batch_call(mg, b, seconds)
    best = dict.fromkeys(batches, float("inf"))
    peak = dict.fromkeys(batches, 0.0)
    for _ in range(repeats):
        for b in batches:
            if cuda:
                torch.cuda.reset_peak_memory_stats(mg.device)
            best[b] = min(best[b], batch_call(mg, b, seconds))
            if cuda:
                peak[b] = max(peak[b], torch.cuda.max_memory_allocated(mg.device) / 2**30)
    frames = round(seconds * mg.frame_rate)
    rows = []
    for b in batches:
        tokens = b * frames * mg.num_codebooks
        rows.append({"batch": b, "wall": best[b], "tokens_per_s": tokens / best[b], "peak_gib": peak[b]})
    return rows


def print_sweep(rows: list[dict]) -> None:
    base = rows[0]["tokens_per_s"] / rows[0]["batch"]  # per row at the smallest batch
    print(f"\n{'batch':>6}{'wall s':>9}{'tokens/s':>11}{'x one row':>11}{'gain':>8}{'peak GiB':>10}")
    stop = None
    for i, row in enumerate(rows):
        gain = row["tokens_per_s"] / rows[i - 1]["tokens_per_s"] - 1 if i else float("nan")
        if i and stop is None and gain < GROWTH_MIN:
            stop = (rows[i - 1]["batch"], row["batch"], gain)
        gain_text = f"{gain:+.0%}" if i else "-"
        peak = f"{row['peak_gib']:.2f}" if row["peak_gib"] else "-"  # measured on CUDA only
        print(f"{row['batch']:>6}{row['wall']:>9.2f}{row['tokens_per_s']:>11.0f}"
              f"{row['tokens_per_s'] / base:>10.2f}x{gain_text:>8}{peak:>10}")  # fmt: skip
    if stop is not None:
        print(f"\nthroughput stops growing at batch {stop[0]}: batch {stop[1]} adds {stop[2]:+.0%} "
              f"(under {GROWTH_MIN:.0%})")  # fmt: skip
    else:
        print(f"\nthroughput still grows at batch {rows[-1]['batch']} (every step added >= {GROWTH_MIN:.0%}): "
              "larger batches may pay where memory allows")  # fmt: skip


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


def powers_of_two(limit: int) -> list[int]:
    """1, 2, 4, ... up to `limit`, and `limit` itself when it is not a power of two."""
    out = [1]
    while out[-1] * 2 <= limit:
        out.append(out[-1] * 2)
    return out if out[-1] == limit else [*out, limit]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="2,4,8", help="request counts N, comma-separated")
    parser.add_argument("--scenes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--size", choices=("small", "medium", "tiny"), default="small")
    parser.add_argument(
        "--max-batch",
        type=int,
        default=int(os.environ.get("MUSICGEN_MAX_BATCH") or 8),
        help="MUSICGEN_MAX_BATCH for the bulk calls; the largest batch of --sweep (default: $MUSICGEN_MAX_BATCH or 8)",
    )
    parser.add_argument("--sweep", action="store_true", help="model level: tokens/s vs batch size")
    parser.add_argument(
        "--batches", help="--sweep's batch sizes, comma-separated (default 1, 2, 4, ... max batch)"
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--dtype", choices=("auto", "float32", "float16", "bfloat16"), default="auto")
    parser.add_argument("--level", choices=("pipeline", "model"), default="pipeline")
    parser.add_argument("--quality-loop", action="store_true", help="USE_QUALITY_LOOP on (pipeline level)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.sweep and args.level != "model":
        parser.error("--sweep is a model-level measurement: add --level model")
    auto_cuda = args.device == "auto" and args.level == "model" and torch.cuda.is_available()
    cuda = args.device == "cuda" or auto_cuda
    if args.level == "pipeline" and cuda:
        parser.error(
            "the pipeline level runs on CPU (MUSICGEN_DEVICE=cpu): use --device cpu or --level model"
        )
    device = torch.device("cuda" if cuda else "cpu")
    dtype = getattr(torch, args.dtype) if args.dtype != "auto" else (torch.float16 if cuda else torch.float32)

    start = time.perf_counter()
    if args.size in ("small", "medium"):
        from musicgen_pipeline.models.tiny import tiny_tokenizer

        config = musicgen_small_config() if args.size == "small" else musicgen_medium_config()
        model, tokenizer = musicgen_from_config(config), tiny_tokenizer()
    else:
        model, tokenizer = tiny_musicgen("tiny-random")
    mg = MusicGen(model, tokenizer, model_id=f"musicgen-{args.size} (random)", device=device,
                  dtype=dtype, load_seconds=time.perf_counter() - start)  # fmt: skip
    where = f"{torch.cuda.get_device_name(device)}" if cuda else f"CPU, {torch.get_num_threads()} threads"
    if args.sweep:
        batches = [int(b) for b in args.batches.split(",")] if args.batches else powers_of_two(args.max_batch)
        print(
            f"model level, batch sweep; musicgen-{args.size} architecture, random weights, {where}, "
            f"{str(dtype).removeprefix('torch.')}; one call of b rows x {args.seconds:g} s per batch size; "
            f"{args.repeats} interleaved repeats, fastest kept"
        )
        print_sweep(sweep(mg, batches, args.seconds, args.repeats))
        return 0
    if args.level == "pipeline":
        _pipeline_env(mg, args)
        # untimed warm-up of both paths (imports, librosa's JIT, Dagster's first instance), short scenes
        warm = argparse.Namespace(**{**vars(args), "seconds": 1.0, "scenes": 2})
        render_pipeline(1, warm, bulk=False), render_pipeline(2, warm, bulk=True)
    print(
        f"{args.level} level; musicgen-{args.size} architecture, random weights, {where}, "
        f"{str(dtype).removeprefix('torch.')}; {args.scenes} scenes x {args.seconds:g} s per request, "
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
