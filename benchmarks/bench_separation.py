"""Demucs separation for one transition: whole segments vs the boundary window only, same run.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_separation.py [--quick] [--repeats N]

Baseline (what the older service did for every transition): separate both 30 s segments whole.
Ours: separate only the stems the crossfade needs, the last `--window` seconds of segment A and the
first of segment B, with `split_window` in its two modes:
- "exact": only the Demucs chunks overlapping the window, on the whole pass's grid (stems equal to
  the whole-segment stems over the window; the max difference is printed);
- "centered": one Demucs segment centred on the window, real audio as context on both sides.

Model: HTDemucs with the released htdemucs architecture sizes (48 channels, depth 4, 5 transformer
layers, 7.8 s segments), random weights, CPU (--quick: the tiny test model).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from fractions import Fraction
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from musicgen_pipeline.models.demucs import DemucsSeparator
from musicgen_pipeline.models.tiny import tiny_htdemucs

SR = 32_000  # MusicGen's rate: what the pipeline separates


def release_like() -> torch.nn.Module:
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(0)
    return HTDemucs(
        sources=["drums", "bass", "other", "vocals"], audio_channels=2, samplerate=44_100, channels=48,
        depth=4, t_layers=5, bottom_channels=512, segment=Fraction(39, 5),
    ).eval()  # fmt: skip


def segment(seed: int, seconds: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SR)) / SR
    tone = sum(0.1 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in rng.uniform(60, 800, 5))
    hits = (np.mod(t, 0.5) < 0.02) * rng.standard_normal(t.size) * 0.3
    return np.stack([tone + hits, tone - hits]).astype(np.float32)


def best(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny test model instead of release-sized")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each segment")
    parser.add_argument("--window", type=float, default=2.0, help="crossfade window at the boundary (s)")
    args = parser.parse_args()

    net = tiny_htdemucs() if args.quick else release_like()
    sep = DemucsSeparator(net, name="tiny-random" if args.quick else "htdemucs-sized (random)",
                          device=torch.device("cpu"))  # fmt: skip
    a, b = segment(1, args.seconds), segment(2, args.seconds)
    n, w = a.shape[1], round(args.window * SR)
    sep.split_window(a[:, :SR], SR, 0, SR // 2)  # warm-up

    def whole():
        return sep.split(a, SR), sep.split(b, SR)

    def windowed(mode: str):
        return sep.split_window(a, SR, n - w, n, mode=mode), sep.split_window(b, SR, 0, w, mode=mode)

    t_whole, (wa, wb) = best(whole, args.repeats)
    t_exact, (ea, eb) = best(lambda: windowed("exact"), args.repeats)
    t_centered, (ca, _cb) = best(lambda: windowed("centered"), args.repeats)

    diff = max(
        max(np.abs(ea[k] - wa[k][:, n - w :]).max() for k in ea),
        max(np.abs(eb[k] - wb[k][:, :w]).max() for k in eb),
    )
    rel = np.sqrt(
        np.mean([np.mean((ca[k] - wa[k][:, n - w :]) ** 2) / np.mean(wa[k][:, n - w :] ** 2) for k in ("drums", "bass", "vocals")])
    )  # fmt: skip
    print(f"model: {sep.model_name}, segment {float(sep.segment):.2f} s, overlap {sep.overlap}, CPU threads "
          f"{torch.get_num_threads()}; two {args.seconds:g} s segments, {args.window:g} s window each side; "
          f"repeats={args.repeats} (min kept)")  # fmt: skip
    print(f"{'variant':<44}{'seconds':>9}{'speed-up':>10}")
    print(f"{'whole: both segments separated (baseline)':<44}{t_whole:>9.2f}{1.0:>9.2f}x")
    print(f"{'windowed exact (chunk grid of the whole pass)':<44}{t_exact:>9.2f}{t_whole / t_exact:>9.2f}x")
    print(f"{'windowed centered (one segment per side)':<44}{t_centered:>9.2f}{t_whole / t_centered:>9.2f}x")
    print(
        f"exact vs whole over the windows: max |diff| = {diff:.2e}; centered vs whole: relative RMS {rel:.3f}"
    )
    print("goal: >= 5x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
