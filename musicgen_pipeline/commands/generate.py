"""`musicgen-pipeline generate "PROMPT" --duration 90 [--mood M] [--seed S] [--melody REF.wav] -o out.wav`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from musicgen_pipeline import limits
from musicgen_pipeline.audio.atomic_write import check_writable, write_audio_atomic
from musicgen_pipeline.audio.io import read_audio
from musicgen_pipeline.errors import InputError

MIN_SECONDS = limits.SCENE_SECONDS.minimum
MAX_SECONDS = limits.SCENE_SECONDS.maximum


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="generate one piece of music from a text prompt (any length; long pieces use a sliding window)",
        description="Generate music with MusicGen. Pieces longer than 30 s are continued window by window "
        "at the token level, so there is no seam. Offline: --model tiny-random (random weights).",
    )
    parser.add_argument("prompt", help="text description of the music")
    parser.add_argument(
        "--duration", type=float, default=30.0, help=f"seconds ({MIN_SECONDS:g}-{MAX_SECONDS:g}, default 30)"
    )
    parser.add_argument("--mood", default=None, help='prepended to the prompt as "{mood}, {prompt}"')
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed (same seed + prompt + model = same audio)"
    )
    parser.add_argument(
        "--melody", type=Path, default=None, help="reference audio whose melody to follow (melody models)"
    )
    parser.add_argument(
        "--model", default=None, help="hub id, local folder or tiny-random (default: MUSICGEN_MODEL)"
    )
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="output file (.wav 16-bit PCM, or .flac)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not MIN_SECONDS <= args.duration <= MAX_SECONDS:
        raise InputError(
            f"--duration {args.duration:g} is outside [{MIN_SECONDS:g}, {MAX_SECONDS:g}] seconds"
        )
    if args.seed not in limits.SEED:
        raise InputError(f"--seed {args.seed} must be {limits.SEED.describe()}")
    prompt = args.prompt.strip()
    if not prompt:
        raise InputError("prompt: must not be empty")
    if args.mood and args.mood.strip():
        prompt = f"{args.mood.strip()}, {prompt}"
    suffix = args.output.suffix.lower().lstrip(".") or "wav"
    if suffix not in {"wav", "flac", "ogg"}:
        raise InputError(f"--output {args.output}: format {suffix!r} is not supported (use .wav or .flac)")
    melody = read_audio(args.melody) if args.melody is not None else None
    check_writable(args.output.with_suffix(f".{suffix}"), f"-o {args.output}")

    from musicgen_pipeline.model_options import generation_params, musicgen_options
    from musicgen_pipeline.models.loaders import get_musicgen
    from musicgen_pipeline.settings import get_settings

    settings = get_settings()
    model = get_musicgen(**musicgen_options(settings, args.model))
    last = [-1]

    def progress(fraction: float) -> None:
        pct = int(fraction * 100)
        if not args.quiet and pct // 10 > last[0]:
            last[0] = pct // 10
            print(f"generating: {pct}%", file=sys.stderr, flush=True)

    result = model.generate(
        [prompt], args.duration, seeds=[args.seed], params=generation_params(settings), melody=melody,
        progress=progress,
    )[0]  # fmt: skip
    path = write_audio_atomic(args.output, result.audio, shown=f"-o {args.output}")
    rtf = result.seconds / max(result.duration, 1e-9)
    print(
        f"{path}  ({result.duration:.2f} s, {result.audio.channels} ch, {result.audio.sample_rate} Hz, "
        f"model {model.model_id}, seed {result.seed}, {result.seconds:.1f} s = {rtf:.2f} s per audio second, "
        f"load {model.load_seconds:.1f} s)"
    )
    return 0
