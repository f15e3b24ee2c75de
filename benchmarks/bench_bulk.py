"""Bulk rendering: N requests generated one after another vs in one bulk (batched across requests).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_bulk.py [--counts 2,4,8] [--scenes 2]
        [--seconds 6] [--repeats 2] [--size small|tiny] [--max-batch 8]

Each request is `--scenes` scenes of `--seconds` s with token-level continuation (scene k continues the
codes of scene k-1), its own prompts and seed. (a) "single": every request alone, scene by scene
(what N single runs do at the model); (b) "bulk": every request's scene k in one batched call per
plan step (`MusicGen.generate_rows`, chunks of at most --max-batch rows), continuation rows batched
too. Same seeds; per-request codes and audio must be bit-identical between (a) and (b) (checked,
printed). Model: the released musicgen-small architecture with random weights (nothing downloaded),
fp32 on CPU, guidance 3, top-k 250; `--size tiny` for a smoke run. Repeats are interleaved
(a, b, a, b, ...) and the minimum kept; wall seconds and process CPU seconds are both printed.
"""

from __future__ import annotations

import argparse
import os
import sys
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="2,4,8", help="request counts N, comma-separated")
    parser.add_argument("--scenes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--size", choices=("small", "tiny"), default="small")
    parser.add_argument("--max-batch", type=int, default=8, help="MUSICGEN_MAX_BATCH for the bulk calls")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]

    start = time.perf_counter()
    if args.size == "small":
        from musicgen_pipeline.models.tiny import tiny_tokenizer

        model, tokenizer = musicgen_from_config(musicgen_small_config()), tiny_tokenizer()
    else:
        model, tokenizer = tiny_musicgen("tiny-random")
    mg = MusicGen(model, tokenizer, model_id=f"musicgen-{args.size} (random)", device=torch.device("cpu"),
                  dtype=torch.float32, load_seconds=time.perf_counter() - start)  # fmt: skip
    print(
        f"musicgen-{args.size} architecture, random weights, CPU fp32, {torch.get_num_threads()} threads; "
        f"{args.scenes} scenes x {args.seconds:g} s per request, continuation; max batch {args.max_batch}; "
        f"{args.repeats} interleaved repeats, min kept"
    )
    print(f"\n{'N':>3}{'single wall':>13}{'bulk wall':>11}{'ratio':>8}{'single CPU':>12}{'bulk CPU':>10}"
          f"{'ratio':>8}{'audio s/s bulk':>16}  identical")  # fmt: skip
    for n in counts:
        best = {"single": (float("inf"), float("inf")), "bulk": (float("inf"), float("inf"))}
        results = {}
        for _ in range(args.repeats):
            for name, fn in (
                ("single", lambda n=n: render_single(mg, n, args.scenes, args.seconds)),
                ("bulk", lambda n=n: render_bulk(mg, n, args.scenes, args.seconds, args.max_batch)),
            ):
                results[name], wall, cpu = timed(fn)
                best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
        same = identical(results["single"], results["bulk"])
        (sw, sc), (bw, bc) = best["single"], best["bulk"]
        audio = n * args.scenes * args.seconds
        print(f"{n:>3}{sw:>13.1f}{bw:>11.1f}{sw / bw:>7.2f}x{sc:>12.1f}{bc:>10.1f}{sc / bc:>7.2f}x"
              f"{audio / bw:>16.3f}  {'yes' if same else 'NO'}")  # fmt: skip
        if not same:
            return 1
    print("\ngoal (issue 9): bulk >= 2.5x faster than single at N = 4, growing with N up to the batch limit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
