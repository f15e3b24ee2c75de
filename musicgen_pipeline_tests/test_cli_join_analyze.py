"""`musicgen-pipeline join` and `analyze`: JSON on stdout, one-line errors with exit 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicgen_pipeline.audio.io import Audio, read_audio, write_audio
from musicgen_pipeline.audio.loudness import integrated_loudness, true_peak_db
from musicgen_pipeline.audio.synth import synth_song
from musicgen_pipeline.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    paths = {
        "a": write_audio(root / "a.wav", synth_song(118, 8.0, 32000, seed=1, channels=2)),
        "b": write_audio(root / "b.flac", synth_song(126, 8.0, 32000, seed=2, channels=2)),
        "short": write_audio(root / "short.wav", synth_song(120, 1.0, 32000, seed=3)),
    }
    (root / "empty.wav").write_bytes(b"")
    (root / "text.wav").write_text("hello")
    sf.write(str(root / "nan.wav"), np.array([0.0, np.nan] * 100, dtype=np.float32), 32000, subtype="FLOAT")
    for name in ("empty", "text", "nan"):
        paths[name] = root / f"{name}.wav"
    paths["root"] = root
    return paths


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_join_writes_wav_and_reports(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out_path = files["root"] / "out.wav"
    code, out, err = _run(
        capsys, "join", str(files["a"]), str(files["b"]), "-o", str(out_path), "--lufs", "-16"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["output"] == str(out_path)
    assert len(report["transitions"]) == 1
    t = report["transitions"][0]
    assert t["passed"] is True and t["beat_aligned"] is True and t["stem_aware"] is True
    assert t["bpm_before"] == pytest.approx(118, rel=0.01) and t["bpm_after"] == pytest.approx(118, rel=0.01)
    assert report["segments"][1]["bpm"] == pytest.approx(126, rel=0.01)
    for key in ("mfcc_similarity", "spectral_flux", "chroma_correlation", "energy_ratio", "boundary_time"):
        assert isinstance(t[key], float)
    with wave.open(str(out_path)) as w:
        assert w.getsampwidth() == 2 and w.getframerate() == 32000
    audio = read_audio(out_path)
    assert report["duration"] == pytest.approx(audio.duration, abs=1e-3)
    assert report["lufs"] == pytest.approx(-16.0, abs=0.5)
    assert integrated_loudness(audio) == pytest.approx(-16.0, abs=0.5)
    assert true_peak_db(audio) <= -0.9  # 16-bit rounding on top of the -1 dBTP ceiling


def test_join_honours_max_tempo_stretch(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """126 -> 118 BPM is a 6.8 % change: stretched under the default (25 %), left alone under 5 %."""
    monkeypatch.setenv("MAX_TEMPO_STRETCH", "0.05")
    out_path = files["root"] / "out-nostretch.wav"
    code, out, err = _run(
        capsys, "join", str(files["a"]), str(files["b"]), "-o", str(out_path), "--stems", "none"
    )
    assert code == 0, err
    (t,) = json.loads(out)["transitions"]
    assert t["bpm_before"] == pytest.approx(118, rel=0.01)
    assert t["bpm_after"] == pytest.approx(126, rel=0.01)


def test_join_plain_options(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out_path = files["root"] / "plain.flac"
    code, out, err = _run(
        capsys,
        "join",
        str(files["a"]),
        str(files["b"]),
        "-o",
        str(out_path),
        "--crossfade",
        "1",
        "--no-beat-align",
        "--no-tempo-match",
        "--stems",
        "none",
        "--no-normalize",
        "--curve",
        "linear",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["stem_source"] == "none"
    t = report["transitions"][0]
    assert t["beat_aligned"] is False and t["stem_aware"] is False and t["overlap_seconds"] == 1.0
    assert t["plan"]["curve"] == "linear"
    assert report["duration"] == pytest.approx(15.0, abs=0.01)
    assert sf.info(str(out_path)).format == "FLAC"


def test_join_into_silence_reports_strict_json(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    silent = write_audio(files["root"] / "silent.wav", Audio(np.zeros((2, 5 * 32000)), 32000))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, _ = _run(
            capsys, "join", str(files["a"]), str(silent), "-o", str(files["root"] / "s.wav"), "--strict"
        )
    # No chroma tuning estimate on silence (librosa warns "empty frequency set" when asked to).
    assert not [w for w in caught if "frequency set" in str(w.message)]
    assert code == 1  # --strict: a failing seam is a failing run
    report = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    t = report["transitions"][0]
    assert t["passed"] is False and t["energy_ratio"] > 1000
    assert any("energy ratio" in f for f in t["failures"])


@pytest.mark.parametrize(
    ("inputs", "extra", "message"),
    [
        (["missing"], [], "at least two input files"),
        (["a", "nowhere.wav"], [], "file not found"),
        (["a", "empty"], [], "empty"),
        (["a", "text"], [], "not a readable audio file"),
        (["a", "nan"], [], "NaN"),
        (["a", "short"], [], "longer than the next segment"),
        (["a", "b"], ["--crossfade", "0"], "--crossfade"),
        (["a", "b"], ["--lufs", "5"], "--lufs"),
    ],
)
def test_join_bad_input_is_one_line_exit_2(
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    inputs: list[str],
    extra: list[str],
    message: str,
) -> None:
    paths = [str(files.get(name, files["root"] / name)) for name in inputs]
    code, out, err = _run(capsys, "join", *paths, "-o", str(files["root"] / "bad.wav"), *extra)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_analyze_reports_tempo_beats_loudness(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "analyze", str(files["a"]))
    assert code == 0, err
    report = json.loads(out)
    assert report["duration"] == pytest.approx(8.0, abs=1e-3)
    assert report["sample_rate"] == 32000 and report["channels"] == 2
    assert report["bpm"] == pytest.approx(118, rel=0.01)
    beats = np.array(report["beat_times"])
    assert beats.size >= 14 and np.median(np.diff(beats)) == pytest.approx(60 / 118, rel=0.01)
    assert -30 < report["lufs"] < 0
    assert report["true_peak_dbtp"] >= report["peak_dbfs"] - 0.01


@pytest.mark.parametrize("name", ["empty", "text", "nan", "missing.wav"])
def test_analyze_bad_input(files: dict[str, Path], capsys: pytest.CaptureFixture[str], name: str) -> None:
    path = files.get(name, files["root"] / name)
    code, out, err = _run(capsys, "analyze", str(path))
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err


def test_console_script_entry_point(files: dict[str, Path]) -> None:
    """The installed command runs the same code (one real subprocess, for the exit status and streams)."""
    proc = subprocess.run(
        [sys.executable, "-m", "musicgen_pipeline.cli", "analyze", str(files["root"] / "missing.wav")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: ") and "file not found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_join_stems_demucs_uses_the_configured_separator(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--stems demucs` asks `models.demucs.get_separator` for the DEMUCS_MODEL the CLI resolved."""
    import types

    from musicgen_pipeline.audio.stems import DspStemSplitter

    calls: list[tuple[object, ...]] = []

    class FakeSeparator(DspStemSplitter):
        name = "demucs:fake"

    def get_separator(**kwargs: object) -> FakeSeparator:
        calls.append(kwargs["model"])
        return FakeSeparator()

    monkeypatch.setenv("DEMUCS_MODEL", "some-demucs")
    fake = types.ModuleType("musicgen_pipeline.models.demucs")
    fake.get_separator = get_separator  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "musicgen_pipeline.models.demucs", fake)
    out_path = files["root"] / "demucs.wav"
    code, out, err = _run(
        capsys, "join", str(files["a"]), str(files["b"]), "-o", str(out_path), "--stems", "demucs"
    )
    assert code == 0, err
    assert calls == ["some-demucs"]
    assert json.loads(out)["stem_source"] == "demucs:fake"


def test_join_glides_into_a_quieter_file_unless_levels_are_kept(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    b = read_audio(files["b"])
    quiet = write_audio(files["root"] / "quiet.wav", Audio(b.samples * 10 ** (-6 / 20), b.sample_rate))
    levels = {}
    for keep in (False, True):
        out_path = files["root"] / f"levels-{keep}.wav"
        argv = ["join", str(files["a"]), str(quiet), "-o", str(out_path), "--no-normalize", "--stems", "none"]
        code, out, err = _run(capsys, *argv, *(["--keep-levels"] if keep else []))
        assert code == 0, err
        t = json.loads(out)["transitions"][0]
        track = read_audio(out_path)
        sr = track.sample_rate
        start, stop = (
            round(t["overlap_start_time"] * sr),
            round((t["overlap_start_time"] + t["overlap_seconds"]) * sr),
        )
        before = integrated_loudness(Audio(track.samples[:, start - 2 * sr : start], sr))
        after = integrated_loudness(Audio(track.samples[:, stop : stop + sr], sr))
        levels[keep] = (t["level_step_db"], after - before)
    step, drop = levels[False]
    assert step > 3.0 and drop > -2.0, levels  # arrives near the first file's level (the glide has begun)
    assert levels[True][0] == 0.0 and levels[True][1] < drop - 3.0  # kept: the track drops at the seam
