"""Hostile bodies, names and audio on the REST edge: each is one 4xx whose message names the problem,
and the next good request is still accepted (in-process app; job creation is recorded, not run)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from musicgen_pipeline.api.app import create_app
from musicgen_pipeline.api.jobs import JobRecord
from musicgen_pipeline.settings import get_settings
from musicgen_pipeline_tests.api.helpers import tone_wav_bytes

KEY = {"X-API-Key": "k"}
GOOD_GENERATE = {"prompt": "calm piano", "duration": 10}
GOOD_SOUNDTRACK = {"base_prompt": "strings", "scenes": [{"mood": "calm", "duration": 5}, {"duration": 5}]}


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, list[Any]]]:
    monkeypatch.setenv("MUSICGEN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("MUSICGEN_MODEL", "tiny-random")
    monkeypatch.setenv("API_KEY", "k")
    monkeypatch.setenv("MAX_UPLOAD_MB", "1")
    monkeypatch.setenv("API_MAX_AUDIO_SECONDS", "30")
    (tmp_path / "data" / "outputs").mkdir(parents=True)
    app = create_app(get_settings())
    submitted: list[Any] = []

    def soundtrack(job_type: str, request: Any) -> JobRecord:
        submitted.append(request)
        return JobRecord(job_id=f"job-{len(submitted)}", job_type=job_type, partition="p", created_at=0.0)

    def separation(job_id: str, input_path: Path, stems: int) -> JobRecord:
        submitted.append(input_path)
        return JobRecord(job_id=job_id, job_type="separate", partition="p", created_at=0.0)

    monkeypatch.setattr(app.state.jobs, "submit_soundtrack", soundtrack)
    monkeypatch.setattr(app.state.jobs, "submit_separation", separation)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client, submitted


def _json_post(client: TestClient, path: str, raw: bytes | str) -> Any:
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    return client.post(path, content=data, headers={**KEY, "Content-Type": "application/json"})


def _messages(response: Any) -> str:
    detail = response.json()["detail"]
    if isinstance(detail, str):
        return detail
    return " | ".join(str(entry["msg"]) for entry in detail)


def _assert_good_still_accepted(client: TestClient, submitted: list[Any]) -> None:
    before = len(submitted)
    response = client.post("/generate", json=GOOD_GENERATE, headers=KEY)
    assert response.status_code == 200, response.text
    assert len(submitted) == before + 1
    assert client.get("/health").status_code == 200


DEEP = "[" * 100_000 + "]" * 100_000
HOSTILE_BODIES = [
    # (path, raw body, status, words the one-line message must hold)
    ("/generate", '{"prompt": "x", "duration": NaN}', 422, "NaN is not a number"),
    ("/generate", '{"prompt": "x", "duration": Infinity}', 422, "Infinity is not a number"),
    (
        "/generate/soundtrack",
        '{"base_prompt": "x", "scenes": [{"duration": 5}], "crossfade_duration": NaN}',
        422,
        "NaN is not a number",
    ),
    ("/generate", '{"prompt": "x", "duration": 1e999}', 422, "out of range"),
    ("/generate", '{"prompt": "x", "duration": ' + "9" * 5000 + "}", 422, "5000 digits"),
    ("/generate", '{"prompt": "\\ud800 piano", "duration": 10}', 422, "lone UTF-16 surrogate"),
    ("/generate", '{"prompt": "\ud800 piano", "duration": 10}', 422, "not UTF-8"),
    ("/generate", DEEP, 422, "nested more than"),
    ("/separate", DEEP, 422, "nested more than"),
    ("/separate", '{"audio_url": "http://x/a.wav", "stems": NaN}', 422, "NaN is not a number"),
    ("/generate/soundtrack", '{"base_prompt": "' + "x" * 20_000 + '", "scenes": []}', 422, "longer than"),
    ("/generate", b"\xff\xfe{\x00}\x00", 422, "UTF-16"),
    ("/generate", '{"prompt": "' + "x" * 2_000_000 + '"}', 413, "larger than the limit"),
]


@pytest.mark.parametrize(("path", "raw", "status", "words"), HOSTILE_BODIES, ids=lambda v: str(v)[:30])
def test_hostile_json_body_is_one_line_4xx(client: Any, path: str, raw: Any, status: int, words: str) -> None:
    test_client, submitted = client
    response = _json_post(test_client, path, raw)
    assert response.status_code == status, response.text[:300]
    message = _messages(response)
    assert words in message and "\n" not in message
    assert len(response.content) < 2000  # nothing echoed back whole
    assert submitted == []
    _assert_good_still_accepted(test_client, submitted)


def test_422_echoes_are_truncated(client: Any) -> None:
    """A prompt far over the limit comes back as a short excerpt, not whole."""
    test_client, submitted = client
    response = test_client.post("/generate", json={"prompt": "x" * 9_000, "duration": 10}, headers=KEY)
    assert response.status_code == 422
    assert len(response.content) < 1000, len(response.content)
    assert "500" in _messages(response)
    _assert_good_still_accepted(test_client, submitted)


def test_long_file_name_is_404_not_500(client: Any) -> None:
    test_client, _ = client
    for name in ("a" * 300, "a" * 300 + ".wav", "d/" + "b" * 300 + ".wav"):
        response = test_client.get(f"/files/{name}")
        assert response.status_code == 404, (name[:10], response.status_code, response.text[:200])
        assert response.json() == {"detail": "File not found"}
    assert test_client.get("/health").status_code == 200


def _wav(samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def _cut_flac() -> bytes:
    """A FLAC whose header declares 1 s of stereo noise but whose file stops after 5 kB."""
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (44_100, 2)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, noise, 44_100, format="FLAC")
    return buf.getvalue()[:5_000]


NAN_FLOAT = np.full((4_410, 2), np.nan, dtype=np.float32)
HOSTILE_AUDIO = [
    ("nan.wav", _wav(NAN_FLOAT, 44_100, "FLOAT"), "NaN or infinite"),
    ("inf.wav", _wav(np.full((4_410, 1), np.inf, dtype=np.float32), 44_100, "FLOAT"), "NaN or infinite"),
    ("one-hz.wav", _wav(np.zeros((40, 1), dtype=np.float32), 1), "sample rate 1 Hz"),
    ("eight.wav", _wav(np.zeros((441, 8), dtype=np.float32), 44_100), "8 channels"),
    ("empty.wav", b"", "empty"),
    ("header-only.wav", _wav(np.zeros((0, 2), dtype=np.float32), 44_100), "no audio"),
    ("text.wav", b"hello, I am not audio" * 10, "not an audio file"),
    ("cut.flac", _cut_flac(), "header declares"),
]


@pytest.mark.parametrize(("name", "data", "words"), HOSTILE_AUDIO, ids=[c[0] for c in HOSTILE_AUDIO])
def test_hostile_upload_is_one_line_400(client: Any, name: str, data: bytes, words: str) -> None:
    test_client, submitted = client
    response = test_client.post("/separate", files={"file": (name, data, "audio/wav")}, headers=KEY)
    assert response.status_code == 400, response.text[:300]
    detail = response.json()["detail"]
    assert words in detail and "\n" not in detail, detail
    assert name in detail  # the client's own name ...
    assert "/uploads/" not in detail and str(get_settings().data_dir) not in detail  # ... never a server path
    assert submitted == []
    good = test_client.post(
        "/separate", files={"file": ("ok.wav", tone_wav_bytes(0.2), "audio/wav")}, headers=KEY
    )
    assert good.status_code == 200, good.text
    assert len(submitted) == 1


def test_upload_longer_than_the_duration_limit_is_refused(client: Any) -> None:
    """Work is bounded by duration (API_MAX_AUDIO_SECONDS=30 here), not only by bytes: 60 s in < 1 MB."""
    test_client, submitted = client
    data = _wav(np.zeros((8_000 * 60, 1), dtype=np.float32), 8_000)
    assert len(data) < 1024 * 1024
    response = test_client.post("/separate", files={"file": ("long.wav", data, "audio/wav")}, headers=KEY)
    assert response.status_code == 400, response.text[:300]
    assert "lasts 60.0 s, longer than the limit of 30 s" in response.json()["detail"]
    assert submitted == []
