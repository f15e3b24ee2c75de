"""Reading, writing and resampling; refusing input no stage can use."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicgen_pipeline.audio.io import Audio, check_audio, read_audio, resample, write_audio
from musicgen_pipeline.audio.synth import tone
from musicgen_pipeline.errors import InputError


def test_wav_round_trip_is_16_bit_pcm(tmp_path: Path) -> None:
    audio = tone(440.0, 0.5, 32000, amplitude=0.5, channels=2)
    path = write_audio(tmp_path / "a.wav", audio)
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (2, 2, 32000, 16000)
    back = read_audio(path)
    assert back.samples.shape == (2, 16000)
    assert np.max(np.abs(back.samples - audio.samples)) < 1 / 32768 + 1e-6


def test_flac_and_format_from_suffix(tmp_path: Path) -> None:
    audio = tone(220.0, 0.3, 44100)
    path = write_audio(tmp_path / "a.flac", audio)
    assert sf.info(str(path)).format == "FLAC"
    assert read_audio(path).sample_rate == 44100
    forced = write_audio(tmp_path / "b.wav", audio, format="flac")
    assert forced.suffix == ".flac"
    with pytest.raises(InputError, match="not supported"):
        write_audio(tmp_path / "c.mp4", audio)


def test_read_resamples_on_request(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "a.wav", tone(1000.0, 1.0, 48000, amplitude=0.5))
    audio = read_audio(path, sample_rate=32000)
    assert audio.sample_rate == 32000 and audio.frames == 32000
    spectrum = np.abs(np.fft.rfft(audio.samples[0]))
    assert np.argmax(spectrum) == 1000


def test_resample_keeps_level_and_pitch() -> None:
    up = resample(tone(440.0, 1.0, 22050, amplitude=0.5), 48000)
    assert up.frames == 48000
    assert np.max(np.abs(up.samples[:, 1000:-1000])) == pytest.approx(0.5, rel=0.01)


def test_bad_inputs_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_audio(tmp_path / "missing.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_audio(empty)
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all")
    with pytest.raises(InputError, match="not a readable audio file"):
        read_audio(text)
    with pytest.raises(InputError, match="directory"):
        read_audio(tmp_path)
    nan = tmp_path / "nan.wav"
    sf.write(str(nan), np.array([0.0, np.nan, 0.1], dtype=np.float32), 8000, subtype="FLOAT")
    with pytest.raises(InputError, match="NaN"):
        read_audio(nan)
    zero = tmp_path / "zero.wav"
    sf.write(str(zero), np.zeros(0, dtype=np.float32), 8000)
    with pytest.raises(InputError, match="empty"):
        read_audio(zero)


def test_audio_value_type() -> None:
    a = Audio(np.zeros(10), 8000)
    assert a.samples.shape == (1, 10) and a.samples.dtype == np.float32
    assert a.with_channels(2).channels == 2
    assert a.with_channels(2).with_channels(1).channels == 1
    assert check_audio(a) is a
    with pytest.raises(ValueError):
        Audio(np.zeros((1, 2, 3)), 8000)
