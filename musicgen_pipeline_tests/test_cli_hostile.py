"""Hostile files on the command line: each is one line on stderr and exit 2, never a traceback, and an
output that cannot be written leaves nothing behind (no truncated file, no 0-byte file, no temporary)."""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicgen_pipeline.audio.io import write_audio
from musicgen_pipeline.audio.synth import synth_song
from musicgen_pipeline.cli import main

GOOD_REQUEST = {"base_prompt": "calm piano", "scenes": [{"mood": "calm", "duration": 5}]}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile-cli")
    write_audio(root / "a.wav", synth_song(118, 4.0, 32000, seed=1, channels=2))
    write_audio(root / "b.wav", synth_song(126, 4.0, 32000, seed=2, channels=2))
    return root


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    _, err = capsys.readouterr()
    return code, err


def _assert_one_line(code: int, err: str, words: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and words in err, err


REQUESTS = [
    ("non-utf8.json", b'{"base_prompt": "caf\xe9"}', "is not UTF-8 text (byte 0xe9"),
    ("utf16.json", json.dumps(GOOD_REQUEST).encode("utf-16"), "is UTF-16 text"),
    ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested more than 32 levels"),
    ("nan.json", b'{"prompt": "x", "duration": NaN}', "NaN is not a number"),
    ("huge-number.json", b'{"prompt": "x", "seed": ' + b"9" * 5000 + b"}", "5000 digits"),
    ("overflow.json", b'{"prompt": "x", "duration": 1e999}', "out of range"),
    ("megabyte.json", b'{"prompt": "' + b"x" * 2_000_000 + b'"}', "larger than the limit"),
    ("surrogate.json", b'{"prompt": "\\udfff"}', "lone UTF-16 surrogate"),
    ("empty.json", b"", "is empty"),
]


@pytest.mark.parametrize(("name", "data", "words"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_render_hostile_request_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, data: bytes, words: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    code, err = _run(capsys, "render", str(path))
    _assert_one_line(code, err, words)
    assert str(path) in err


def _wav(path: Path, samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    sf.write(str(path), samples, rate, subtype=subtype)
    return path


def _cut_flac(path: Path) -> Path:
    buf = io.BytesIO()
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (44_100, 2)).astype(np.float32)
    sf.write(buf, noise, 44_100, format="FLAC")
    path.write_bytes(buf.getvalue()[:5_000])
    return path


AUDIO = [
    ("eight.wav", lambda p: _wav(p, np.zeros((4_410, 8), np.float32), 44_100), "8 channels"),
    ("one-hz.wav", lambda p: _wav(p, np.zeros((40, 1), np.float32), 1, "FLOAT"), "sample rate 1 Hz"),
    ("zero.wav", lambda p: _wav(p, np.zeros((0, 2), np.float32), 44_100), "no audio samples"),
    ("inf.wav", lambda p: _wav(p, np.full((400, 1), np.inf, np.float32), 44_100, "FLOAT"), "NaN or infinite"),
    ("cut.flac", _cut_flac, "cut.flac: not a readable audio file"),
]


@pytest.mark.parametrize(("name", "make", "words"), AUDIO, ids=[a[0] for a in AUDIO])
def test_join_hostile_audio_is_one_line_exit_2(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, make, words: str
) -> None:
    bad = make(tmp_path / name)
    out = tmp_path / "out.wav"
    code, err = _run(capsys, "join", str(root / "a.wav"), str(bad), "-o", str(out), "--stems", "none")
    _assert_one_line(code, err, words)
    assert not out.exists()
    code, err = _run(
        capsys, "join", str(root / "a.wav"), str(root / "b.wav"), "-o", str(out), "--stems", "none"
    )
    assert code == 0, err
    assert sf.info(str(out)).duration > 4


@pytest.mark.parametrize(
    "argv",
    [
        ("join", "{a}", "{b}", "--stems", "none", "-o", "/proc/x.wav"),
        ("generate", "calm piano", "--duration", "1", "--model", "tiny-random", "-o", "/proc/x.wav"),
    ],
    ids=["join", "generate"],
)
def test_unwritable_output_is_one_line_exit_2(
    root: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    args = [a.format(a=root / "a.wav", b=root / "b.wav") for a in argv]
    code, err = _run(capsys, *args)
    _assert_one_line(code, err, "-o /proc/x.wav: cannot write the file (no such file or directory)")


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 kB tmpfs (a full disk for real); skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_leaves_the_old_output_and_no_temporary(
    root: Path, tiny_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tiny_disk / "out.wav"
    out.write_bytes(b"previous result")
    code, err = _run(
        capsys, "join", str(root / "a.wav"), str(root / "b.wav"), "-o", str(out), "--stems", "none"
    )
    _assert_one_line(code, err, "cannot write the file (no space left on device)")
    assert out.read_bytes() == b"previous result"
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["out.wav"]


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))


def test_file_size_limit_is_one_line_and_leaves_nothing(root: Path, tmp_path: Path) -> None:
    """The same failure anywhere (no mount needed): a write cut short by the OS (RLIMIT_FSIZE)."""
    out = tmp_path / "out.wav"
    done = subprocess.run(
        [sys.executable, "-m", "musicgen_pipeline.cli", "join", str(root / "a.wav"), str(root / "b.wav"),
         "-o", str(out), "--stems", "none", "--no-tempo-match"],
        capture_output=True, text=True, preexec_fn=_limit_file_size, env=os.environ, timeout=300,
    )  # fmt: skip
    _assert_one_line(done.returncode, done.stderr, f"-o {out}: cannot write the file (file too large)")
    assert list(tmp_path.iterdir()) == []
