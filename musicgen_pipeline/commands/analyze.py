"""`musicgen-pipeline analyze X.wav`: duration, rate, channels, tempo, beats, loudness and peaks as JSON."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from musicgen_pipeline.audio.io import read_audio
from musicgen_pipeline.audio.loudness import integrated_loudness, sample_peak_dbfs, true_peak_db
from musicgen_pipeline.audio.rhythm import analyze_beats
from musicgen_pipeline.commands.join import print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="tempo, beats, loudness and peaks of an audio file, as JSON",
        description="Analyse an audio file: duration, sample rate, channels, tempo (BPM) and beat times "
        "(librosa, octave-corrected), integrated loudness (ITU-R BS.1770, LUFS), sample peak (dBFS) "
        "and true peak (dBTP, 4x oversampled).",
    )
    parser.add_argument("input", type=Path, help="audio file (WAV, FLAC, OGG, MP3 where supported)")
    parser.set_defaults(func=run)


def _finite(value: float, digits: int = 3) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


def run(args: argparse.Namespace) -> int:
    audio = read_audio(args.input)
    grid = analyze_beats(audio)
    report = {
        "path": str(args.input),
        "duration": round(audio.duration, 4),
        "sample_rate": audio.sample_rate,
        "channels": audio.channels,
        "frames": audio.frames,
        "bpm": round(grid.bpm, 3) if grid.bpm > 0 else None,
        "beat_count": len(grid),
        "beat_times": [round(float(t), 4) for t in grid.beat_times],
        "lufs": _finite(integrated_loudness(audio)),
        "peak_dbfs": _finite(sample_peak_dbfs(audio)),
        "true_peak_dbtp": _finite(true_peak_db(audio)),
    }
    print_json(report)
    return 0
