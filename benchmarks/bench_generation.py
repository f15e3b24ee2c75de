"""MusicGen generation speed: stock `MusicgenForConditionalGeneration.generate` vs ours, same run.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_generation.py [--quick] [--repeats N]

Model: the released musicgen-small architecture (T5-base text encoder, 24 x 1024 decoder, EnCodec
32 kHz) built in memory with random weights (nothing is downloaded); fp32, guidance 3, top-k 250.
Each measurement is repeated (stock and ours interleaved) and the minimum kept: the machine is
shared, and the minimum is the least disturbed run.

Prints three tables:
1. throughput: 4 prompts in one call vs 4 calls one by one (stock and ours);
2. seconds per decoding step at batch 1 vs the weight-read floor measured in the same run (every
   weight a step must read, multiplied once by the 2 guidance rows: the time no decoder can beat);
3. seconds per audio second at several durations (1/10/30 s; --quick: 0.5/1/2 s).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn.functional as F

from musicgen_pipeline.models.musicgen import MusicGen
from musicgen_pipeline.models.params import GenerationParams
from musicgen_pipeline.models.tiny import musicgen_from_config, musicgen_small_config, tiny_tokenizer

PROMPTS = ["calm piano at dawn", "epic orchestral battle", "lofi hip hop beat", "jazz trio late night"]


def best(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def weight_floor(mg: MusicGen, rows: int, repeats: int) -> tuple[float, float]:
    """Seconds to multiply every per-step decoder weight once by `rows` vectors; and the bytes read."""
    fd = mg.fast
    weights = [fd.heads_weight]
    for layer in fd.layers:
        weights += [layer.qkv, layer.out, layer.cross_q, layer.cross_out, layer.fc1, layer.fc2]
    inputs = {w.shape[1]: torch.randn(rows, 1, w.shape[1], dtype=w.dtype) for w in weights}

    def run() -> None:
        with torch.inference_mode():
            for w in weights:
                F.linear(inputs[w.shape[1]], w)

    run()
    nbytes = sum(w.numel() * w.element_size() for w in weights)
    return best(run, repeats * 3), nbytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short durations for a shared machine")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tables", default="123", help="which tables to run, e.g. 3")
    args = parser.parse_args()
    torch.manual_seed(0)

    start = time.perf_counter()
    model = musicgen_from_config(musicgen_small_config())
    tokenizer = tiny_tokenizer()
    build = time.perf_counter() - start
    ours = MusicGen(model, tokenizer, model_id="musicgen-small (random)", device=torch.device("cpu"),
                    dtype=torch.float32, load_seconds=build)  # fmt: skip
    params = GenerationParams(top_k=250, guidance_scale=3.0)
    frame_rate = ours.frame_rate
    delay = ours.max_delay

    def stock(prompts: list[str], seconds: float) -> None:
        frames = round(seconds * frame_rate)
        inputs = tokenizer(prompts, padding=True, return_tensors="pt")
        model.generate(**inputs, do_sample=True, guidance_scale=3.0, top_k=250, max_new_tokens=frames + delay)

    def mine(prompts: list[str], seconds: float) -> None:
        ours.generate(prompts, seconds, seeds=list(range(len(prompts))), params=params)

    print(f"model: musicgen-small architecture, random weights, fp32, CPU threads={torch.get_num_threads()}; "
          f"built in {build:.1f} s; repeats={args.repeats} (min kept)")  # fmt: skip
    stock(PROMPTS[:1], 0.2)
    mine(PROMPTS[:1], 0.2)  # warm-up both paths

    if "1" in args.tables:
        batch_table(args, frame_rate, delay, stock, mine)
    if "2" in args.tables:
        step_table(args, ours, frame_rate, delay, stock, mine)
    if "3" in args.tables:
        duration_table(args, stock, mine)
    return 0


def batch_table(args, frame_rate, delay, stock, mine) -> None:
    # 1. batch of 4 vs 4 single calls
    seconds = 0.5 if args.quick else 2.0
    steps = round(seconds * frame_rate) + delay
    rows = []
    # interleaved: each repeat runs all four variants back to back, so load swings hit them alike
    variants = {
        "stock_single": lambda: [stock([p], seconds) for p in PROMPTS],
        "stock_batch": lambda: stock(PROMPTS, seconds),
        "ours_single": lambda: [mine([p], seconds) for p in PROMPTS],
        "ours_batch": lambda: mine(PROMPTS, seconds),
    }
    timing = dict.fromkeys(variants, float("inf"))
    for _ in range(args.repeats):
        for name, fn in variants.items():
            timing[name] = min(timing[name], best(fn, 1))
    t_stock_single, t_stock_batch = timing["stock_single"], timing["stock_batch"]
    t_ours_single, t_ours_batch = timing["ours_single"], timing["ours_batch"]
    print(
        f"\n1. four {seconds:g} s prompts ({steps} steps each): wall seconds and throughput vs stock one by one"
    )
    print(f"{'variant':<34}{'seconds':>10}{'x stock 4x1':>14}")
    for name, t in (
        ("stock, 4 calls one by one", t_stock_single),
        ("stock, one batched call", t_stock_batch),
        ("ours, 4 calls one by one", t_ours_single),
        ("ours, one batched call", t_ours_batch),
    ):
        rows.append((name, t))
        print(f"{name:<34}{t:>10.2f}{t_stock_single / t:>13.2f}x")
    print(f"ours batch-4 vs ours one by one: {t_ours_single / t_ours_batch:.2f}x (goal >= 2.5x)")


def step_table(args, ours, frame_rate, delay, stock, mine) -> None:
    # 2. seconds per step at batch 1 vs the weight-read floor
    floor, nbytes = weight_floor(ours, rows=2, repeats=args.repeats)
    seconds = 1.0 if args.quick else 4.0
    steps = round(seconds * frame_rate) + delay
    t_stock = t_ours = float("inf")
    for _ in range(args.repeats):  # interleaved
        t_stock = min(t_stock, best(lambda: stock(PROMPTS[:1], seconds), 1) / steps)
        t_ours = min(t_ours, best(lambda: mine(PROMPTS[:1], seconds), 1) / steps)
    floor_after = weight_floor(ours, rows=2, repeats=args.repeats)[0]
    floor = min(floor, floor_after)
    print(
        f"\n2. seconds per decoding step, batch 1 (+1 guidance row), {seconds:g} s = {steps} steps, "
        f"end-to-end (text encoder and EnCodec included)"
    )
    print(
        f"weight-read floor: {nbytes / 1e9:.2f} GB of decoder weights per step, {floor:.3f} s "
        f"({nbytes / floor / 1e9:.1f} GB/s), measured before and after, min kept"
    )
    print(f"{'variant':<20}{'s/step':>10}{'x floor':>10}{'stock/x':>10}")
    for name, t in (("stock", t_stock), ("ours", t_ours)):
        print(f"{name:<20}{t:>10.3f}{t / floor:>9.2f}x{t_stock / t:>9.2f}x")
    print("goal: ours within 1.3x of the floor")


def duration_table(args, stock, mine) -> None:
    # 3. seconds per audio second vs duration
    durations = [0.5, 1.0, 2.0] if args.quick else [1.0, 10.0, 30.0]
    print("\n3. seconds per audio second (batch 1)")
    print(f"{'duration':>9}{'stock':>10}{'ours':>10}{'stock/ours':>12}")
    for d in durations:
        reps = 1 if d >= 10 else args.repeats
        ts = to = float("inf")
        for _ in range(reps):  # interleaved
            ts = min(ts, best(lambda d=d: stock(PROMPTS[:1], d), 1) / d)
            to = min(to, best(lambda d=d: mine(PROMPTS[:1], d), 1) / d)
        print(f"{d:>8g}s{ts:>10.3f}{to:>10.3f}{ts / to:>11.2f}x")


if __name__ == "__main__":
    raise SystemExit(main())
