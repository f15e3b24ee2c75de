"""Model loading: devices, offline hub ids fail fast with the clear message, CLI commands."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from musicgen_pipeline.audio.io import read_audio
from musicgen_pipeline.cli import main
from musicgen_pipeline.errors import InputError, ModelUnavailableError
from musicgen_pipeline.models.device import resolve_device, resolve_dtype

REPO = Path(__file__).resolve().parents[2]


def test_device_and_dtype_choice():
    device = resolve_device("auto")
    assert device.type in {"cuda", "mps", "cpu"}
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.float16
    assert resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(InputError, match="MUSICGEN_DEVICE"):
        resolve_device("tpu")
    with pytest.raises(InputError, match="MUSICGEN_DTYPE"):
        resolve_dtype("int8", torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda")


def test_offline_hub_id_fails_fast_in_process():
    from musicgen_pipeline.models.loaders import load_musicgen

    start = time.perf_counter()
    with pytest.raises(ModelUnavailableError, match="tiny-random") as info:
        load_musicgen("facebook/musicgen-small", device="cpu")
    assert time.perf_counter() - start < 10
    assert "local folder" in str(info.value)


def test_missing_local_folder_is_clear(tmp_path):
    from musicgen_pipeline.models.loaders import load_musicgen

    with pytest.raises(ModelUnavailableError, match=r"config\.json"):
        load_musicgen(str(tmp_path / "nope"), device="cpu")


@pytest.mark.slow
def test_unreachable_network_fails_fast_without_offline_flag(tmp_path):
    # The hub is unreachable (endpoint refuses connections) and HF_HUB_OFFLINE is *not* set: no retries.
    env = {k: v for k, v in os.environ.items() if k not in {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}}
    env |= {
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "HF_HOME": str(tmp_path / "hf"),
        "TORCH_HOME": str(tmp_path / "t"),
    }
    code = (
        "from musicgen_pipeline.cli import main; import sys; "
        "sys.exit(main(['generate', 'x', '--duration', '1', '--model', 'facebook/musicgen-small', '-o', 'o.wav']))"
    )
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    elapsed = time.perf_counter() - start
    assert proc.returncode == 2, proc.stderr
    assert "tiny-random" in proc.stderr and "local folder" in proc.stderr and "Traceback" not in proc.stderr
    assert elapsed < 30


@pytest.mark.slow
def test_offline_demucs_name_fails_fast(tmp_path, monkeypatch):
    from musicgen_pipeline.models import demucs

    monkeypatch.setattr(demucs, "DEMUCS_HOST", ("127.0.0.1", 9))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    start = time.perf_counter()
    with pytest.raises(ModelUnavailableError, match="tiny-random"):
        demucs.load_demucs_model("htdemucs")
    assert time.perf_counter() - start < 10


@pytest.mark.slow
def test_cli_generate_and_separate(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MUSICGEN_MODEL", "tiny-random")
    monkeypatch.setenv("DEMUCS_MODEL", "tiny-random")
    out = tmp_path / "song.wav"
    assert main(["generate", "calm piano", "--mood", "peaceful", "--duration", "2.5", "--seed", "4", "-o",
                 str(out), "--quiet"]) == 0  # fmt: skip
    audio = read_audio(out)
    assert audio.sample_rate == 32000 and audio.frames == 80000
    assert main(["separate", str(out), "--stems", "2", "-o", str(tmp_path / "stems")]) == 0
    vocals = read_audio(tmp_path / "stems" / "song.vocals.wav")
    acc = read_audio(tmp_path / "stems" / "song.accompaniment.wav")
    assert vocals.frames == acc.frames == 80000
    # 16-bit files: the two stems sum back to the mix within quantisation
    assert np.abs(vocals.samples + acc.samples - audio.samples).max() < 3 / 32768
    assert main(["generate", "x", "--duration", "0.5", "-o", str(out)]) == 2
    assert "--duration" in capsys.readouterr().err


@pytest.mark.slow
def test_local_folder_loads_for_real(tmp_path):
    from musicgen_pipeline.models.loaders import load_musicgen
    from musicgen_pipeline.models.tiny import tiny_musicgen

    model, tokenizer = tiny_musicgen("tiny-random", seed=5)
    model.save_pretrained(tmp_path / "mg")
    tokenizer.save_pretrained(tmp_path / "mg")
    loaded = load_musicgen(str(tmp_path / "mg"), device="cpu", dtype="float32")
    assert loaded.model_id == str(tmp_path / "mg") and loaded.sample_rate == 32000
    from musicgen_pipeline.models.musicgen import MusicGen

    rebuilt = MusicGen(*tiny_musicgen("tiny-random", seed=5), model_id="x", device=torch.device("cpu"),
                       dtype=torch.float32)  # fmt: skip
    a = loaded.generate(["calm piano"], 1.0, seeds=[7])[0]
    b = rebuilt.generate(["calm piano"], 1.0, seeds=[7])[0]
    np.testing.assert_array_equal(a.codes, b.codes)  # same weights + tokenizer from disk: same music
