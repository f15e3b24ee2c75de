"""`musicgen-pipeline separate SONG.wav --stems 4|2 -o DIR/`: one WAV per Demucs stem."""

from __future__ import annotations

import argparse
from pathlib import Path

from musicgen_pipeline.audio.atomic_write import write_audio_atomic
from musicgen_pipeline.audio.io import read_audio
from musicgen_pipeline.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "separate",
        help="split a song into stems with Demucs (drums/bass/other/vocals, or vocals/accompaniment)",
        description="Separate audio into stems with Demucs. Stems keep the input's rate and channels and "
        "sum back to the mix (residual 'other'). Offline: --model tiny-random (random weights).",
    )
    parser.add_argument("input", type=Path, help="audio file (WAV, FLAC, OGG, ...)")
    parser.add_argument("--stems", type=int, choices=(4, 2), default=4, help="4 (default) or 2 stems")
    parser.add_argument(
        "--model", default=None, help="Demucs name, local folder or tiny-random (default: DEMUCS_MODEL)"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder (created if missing)")
    parser.add_argument("--format", default="wav", choices=("wav", "flac"), help="stem file format")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.output.exists() and not args.output.is_dir():
        raise InputError(f"-o {args.output}: exists and is not a folder")
    audio = read_audio(args.input)

    from musicgen_pipeline.model_options import separator_options
    from musicgen_pipeline.models.demucs import get_separator
    from musicgen_pipeline.settings import get_settings

    separator = get_separator(**separator_options(get_settings(), args.model))
    stems = separator.separate(audio, stems=args.stems)
    try:
        args.output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"-o {args.output}: cannot create the folder ({exc.strerror or exc})") from None
    for name, stem in stems.items():
        path = write_audio_atomic(args.output / f"{args.input.stem}.{name}.{args.format}", stem)
        print(path)
    return 0
