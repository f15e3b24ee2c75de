"""`musicgen-pipeline join A.wav B.wav [C.wav ...] -o out.wav`: join existing audio with the full
transition chain (beats, tempo match, stem-aware beat-aligned crossfades, loudness) and print a JSON report."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from musicgen_pipeline.audio.atomic_write import check_writable, write_audio_atomic
from musicgen_pipeline.audio.crossfade import CURVES
from musicgen_pipeline.audio.io import WRITE_FORMATS, read_audio
from musicgen_pipeline.audio.join import join_segments
from musicgen_pipeline.audio.loudness import integrated_loudness, normalize_loudness, true_peak_db
from musicgen_pipeline.audio.seam_options import MAX_CROSSFADE_SECONDS, TransitionOptions
from musicgen_pipeline.audio.stems import DspStemSplitter, StemSplitter
from musicgen_pipeline.errors import InputError
from musicgen_pipeline.quality import quality_thresholds
from musicgen_pipeline.settings import get_settings

STEM_CHOICES = ("dsp", "demucs", "none")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "join",
        help="join audio files with beat-aligned, tempo-matched, stem-aware crossfades; JSON report",
        description="Join two or more audio files into one track with the full transition chain: beat "
        "tracking, tempo matching to the first file's tempo, crossfades that start on a beat with the bass "
        "swapped on a beat, cut points on zero crossings, and loudness normalisation (ITU-R BS.1770). "
        "Prints a JSON report: per transition the boundary time, tempi, the four scores and pass/fail; "
        "the final duration and loudness.",
    )
    parser.add_argument(
        "inputs", nargs="+", type=Path, metavar="INPUT", help="audio files, in order (2 or more)"
    )
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="output file (.wav 16-bit PCM, .flac, .ogg)"
    )
    parser.add_argument(
        "--crossfade",
        type=float,
        default=2.0,
        help=f"overlap in seconds (default 2.0, max {MAX_CROSSFADE_SECONDS:g})",
    )
    parser.add_argument(
        "--curve",
        choices=CURVES,
        default="equal_power",
        help="fade shape: equal_power (default), linear, or adaptive (equal power corrected for correlation)",
    )
    parser.add_argument("--no-beat-align", action="store_true", help="do not snap the overlap to beats")
    parser.add_argument("--no-tempo-match", action="store_true", help="do not time-stretch to a common tempo")
    parser.add_argument(
        "--stems",
        choices=STEM_CHOICES,
        default="dsp",
        help="stem split for the stem-aware crossfade: dsp (fast, default), demucs (DEMUCS_MODEL), none (plain crossfade)",
    )
    parser.add_argument(
        "--keep-levels",
        action="store_true",
        help="each file keeps its own level through its seam (no level glide into the next file, no lift "
        "of a quiet overlap); by default the next file arrives at the previous one's level and glides to "
        "its own over 8 s",
    )
    parser.add_argument(
        "--lufs", type=float, default=None, help="target integrated loudness (default: TARGET_LUFS, -14)"
    )
    parser.add_argument(
        "--true-peak",
        type=float,
        default=None,
        help="true-peak ceiling in dBTP (default: TRUE_PEAK_DBTP, -1)",
    )
    parser.add_argument(
        "--no-normalize", action="store_true", help="keep the joined level (no loudness normalisation)"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when a transition fails a threshold"
    )
    parser.set_defaults(func=run)


def _splitter(choice: str) -> StemSplitter | None:
    if choice == "none":
        return None
    if choice == "dsp":
        return DspStemSplitter()
    from musicgen_pipeline.model_options import separator_options
    from musicgen_pipeline.models.demucs import get_separator

    return get_separator(**separator_options(get_settings()))


def print_json(report: dict[str, Any]) -> None:
    """Print a report as strict JSON (no NaN/Infinity); a reader that closes the pipe early
    (`| head`) ends the output quietly instead of with a traceback."""
    try:
        print(json.dumps(report, indent=2, allow_nan=False))
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _finite(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    if len(args.inputs) < 2:
        raise InputError(f"join needs at least two input files, got {len(args.inputs)} ({args.inputs[0]})")
    suffix = args.output.suffix.lower().lstrip(".") or "wav"
    if suffix not in WRITE_FORMATS:
        raise InputError(
            f"-o {args.output}: format {suffix!r} is not supported (use one of {sorted(WRITE_FORMATS)})"
        )
    if args.output.is_dir():
        raise InputError(f"-o {args.output}: is a folder; give a file name")
    for path in args.inputs:
        if path.resolve() == args.output.resolve():
            raise InputError(f"-o {args.output}: would overwrite input {path}")
    if not math.isfinite(args.crossfade) or not 0.01 <= args.crossfade <= MAX_CROSSFADE_SECONDS:
        raise InputError(
            f"--crossfade {args.crossfade}: must be between 0.01 and {MAX_CROSSFADE_SECONDS:g} seconds"
        )
    target_lufs = settings.target_lufs if args.lufs is None else args.lufs
    ceiling = settings.true_peak_dbtp if args.true_peak is None else args.true_peak
    if not (math.isfinite(target_lufs) and -70.0 <= target_lufs <= 0.0):
        raise InputError(f"--lufs {target_lufs}: must be between -70 and 0 LUFS")
    if not (math.isfinite(ceiling) and -20.0 <= ceiling <= 0.0):
        raise InputError(f"--true-peak {ceiling}: must be between -20 and 0 dBTP")

    segments = [read_audio(path) for path in args.inputs]
    check_writable(args.output.with_suffix(f".{suffix}"), f"-o {args.output}")
    options = TransitionOptions(
        crossfade_seconds=args.crossfade,
        beat_align=not args.no_beat_align,
        tempo_match=not args.no_tempo_match,
        stem_aware=args.stems != "none",
        curve=args.curve,
        max_stretch=settings.max_tempo_stretch,  # MAX_TEMPO_STRETCH, as in the pipeline
        hold_level=not args.keep_levels,
        level_glide_seconds=0.0 if args.keep_levels else TransitionOptions.level_glide_seconds,
    )
    result = join_segments(
        segments,
        options,
        splitter=_splitter(args.stems),
        thresholds=quality_thresholds(settings),
        names=[str(p) for p in args.inputs],
    )
    audio = result.audio
    loudness: dict[str, Any]
    if args.no_normalize:
        loudness = {
            "lufs": _finite(integrated_loudness(audio)),
            "true_peak_dbtp": _finite(true_peak_db(audio)),
        }
    else:
        audio, norm = normalize_loudness(audio, target_lufs, ceiling)
        loudness = {"lufs": _finite(norm.output_lufs), "true_peak_dbtp": _finite(norm.output_true_peak_dbtp)}
        loudness["normalisation"] = {
            "target_lufs": target_lufs,
            "true_peak_ceiling_dbtp": ceiling,
            **norm.to_dict(),
        }
    path = write_audio_atomic(args.output, audio, shown=f"-o {args.output}")
    report = {"output": str(path), **result.to_dict(), **loudness, "duration": round(audio.duration, 4)}
    print_json(report)
    return 1 if args.strict and not result.passed else 0
