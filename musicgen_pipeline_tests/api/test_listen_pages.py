"""The /listen pages over HTTP (no browser): index order, players, range requests, whitelist, the
picture's time axis, the optional API-key guard. A partition folder is laid out as the pipeline writes
it, with synthetic audio of known content (the browser test in `browser/` uses a real render)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi import FastAPI
from fastapi.testclient import TestClient

from musicgen_pipeline.api.listen import listen_router
from musicgen_pipeline.api.listen.pages import sig3
from musicgen_pipeline.api.listen.partition_view import list_partitions, read_partition
from musicgen_pipeline.api.listen.picture import WAVE_HEIGHT, WIDTH
from musicgen_pipeline.settings import get_settings

RATE = 8000
KEY = "trip-0123456789"
OLD = "older-0123456789"
BURST_AT = 3.0  # seconds: the one loud moment of the soundtrack
TOTAL = 8.0


def _tone(seconds: float, level: float = 0.1) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _write(path: Path, samples: np.ndarray, subtype: str = "FLOAT") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, RATE, subtype=subtype)


def _partition(outputs: Path, key: str, rendered: bool) -> Path:
    folder = outputs / key
    request = {
        "name": key.split("-")[0],
        "base_prompt": "warm strings",
        "scenes": [{"mood": "calm", "duration": 4.0}, {"mood": "bright", "duration": 4.0}],
    }
    folder.mkdir(parents=True)
    (folder / "request.json").write_text(json.dumps(request))
    for i in range(2):
        _write(folder / "segments" / f"scene_{i:02d}.wav", _tone(5.0))
    if not rendered:
        return folder
    for i in range(2):
        _write(folder / "aligned" / f"scene_{i:02d}.wav", _tone(5.0))
    for side in ("prev", "next"):
        for stem in ("drums", "bass", "other", "vocals"):
            _write(folder / "stems" / "transition_00" / f"{side}_{stem}.wav", _tone(1.0))
    track = _tone(TOTAL)
    at = round(BURST_AT * RATE)
    track[at : at + RATE // 100] = 0.9  # 10 ms burst
    _write(folder / "soundtrack.wav", track, subtype="PCM_16")
    (folder / "pictures").mkdir()
    (folder / "pictures" / "scene_00.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    scores = {
        "mfcc_similarity": 0.91234,
        "spectral_flux": 150.0,
        "chroma_correlation": 0.8,
        "energy_ratio": 1.1,
    }
    thresholds = {
        "mfcc_similarity_min": 0.7,
        "spectral_flux_max": 100.0,
        "chroma_correlation_min": 0.5,
        "energy_ratio_max": 2.0,
    }
    transition = {
        "index": 0,
        "boundary_time": 4.0,
        "target_time": 4.0,
        "overlap_start_time": 3.5,
        "overlap_seconds": 1.0,
        "bpm_before": 120.0,
        "bpm_after": 118.0,
        "bass_swap_time": 4.0,
        "clicks": [],
        "passed": False,
        "failures": ["spectral_flux 150 >= 100"],
        "thresholds": thresholds,
        **scores,
    }
    report = {
        "transitions": [transition],
        "thresholds": thresholds,
        "quality_loop": {
            "enabled": True,
            "max_regen_attempts": 3,
            "scenes": [
                {"index": 0, "kept_attempt": 0, "seed": 1, "regenerations": 0, "exhausted": False,
                 "attempts": [{"attempt": 0, "seed": 1, "passed": None, "scores": None}]},
                {"index": 1, "kept_attempt": 1, "seed": 12, "regenerations": 1, "exhausted": False,
                 "attempts": [{"attempt": 0, "seed": 2, "passed": False, "scores": scores},
                              {"attempt": 1, "seed": 12, "passed": True, "scores": scores}]},
            ],
        },
    }  # fmt: skip
    (folder / "transition_report.json").write_text(json.dumps(report))
    summary = {"duration_seconds": TOTAL, "transitions": 1, "transitions_passed": 0, "target_bpm": 120.0,
               "loudness_lufs": -14.0, "model": "tiny-random", "seed": 1, "regenerations": 1,
               "soundtrack_path": str(folder / "soundtrack.wav"), "rendered_at": "2026-01-01T00:00:00+00:00"}  # fmt: skip
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MUSICGEN_DATA", str(tmp_path / "data"))
    outputs = tmp_path / "data" / "outputs"
    old = _partition(outputs, OLD, rendered=False)
    os.utime(old / "request.json", (1_000_000, 1_000_000))
    _partition(outputs, KEY, rendered=True)
    (outputs / "catalog.csv").write_text("partition\n")
    (outputs / "not-a-partition").mkdir()
    return outputs


def _client(**env: str) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        app = FastAPI()
        app.include_router(listen_router(get_settings()))
    with TestClient(app) as client:
        yield client


@pytest.fixture
def client(outputs: Path) -> Iterator[TestClient]:
    yield from _client()


def test_reader_lists_soundtrack_partitions_newest_first(outputs: Path) -> None:
    views = list_partitions(outputs)
    assert [v.key for v in views] == [KEY, OLD]
    view = read_partition(outputs, KEY)
    assert view is not None and view.rendered and view.duration == TOTAL
    assert view.prompt == "warm strings (calm → bright)"
    assert view.status == "rendered, 0/1 seams pass"
    assert sorted(view.audio_files) == sorted(
        ["soundtrack.wav", "segments/scene_00.wav", "segments/scene_01.wav", "aligned/scene_00.wav",
         "aligned/scene_01.wav"]
        + [f"stems/transition_00/{s}_{n}.wav" for s in ("prev", "next") for n in ("drums", "bass", "other", "vocals")]
    )  # fmt: skip
    pending = read_partition(outputs, OLD)
    assert pending is not None and not pending.rendered and pending.duration == 8.0
    assert pending.status.startswith("not rendered yet") and pending.soundtrack is None
    assert read_partition(outputs, "../outputs") is None and read_partition(outputs, "nope-1") is None


def test_index_page(client: TestClient) -> None:
    response = client.get("/listen/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    body = response.text
    assert body.index(f"/listen/{KEY}") < body.index(f"/listen/{OLD}")
    assert "warm strings (calm → bright)" in body and "8.000 s" in body and "rendered, 0/1 seams pass" in body
    assert client.get("/listen").status_code == 200


def test_partition_page_has_every_player_and_the_seams(client: TestClient) -> None:
    body = client.get(f"/listen/{KEY}").text
    view = read_partition(get_settings().outputs_dir, KEY)
    assert view is not None
    for relpath in view.audio_files:
        assert f"src='/listen/{KEY}/audio/{relpath}'" in body
    assert body.count("<audio") == len(view.audio_files) == 13
    assert "id='soundtrack'" in body
    # Seam overlap 3.5-4.5 s of 8 s: 43.75 % from the left, 12.5 % wide; scene 2 starts at 4 s (50 %).
    assert "data-seek='3.5000' style='left:43.7500%;width:12.5000%'" in body
    assert "class='scene-boundary' style='left:50.0000%'" in body
    # Scores to 3 significant digits with pass/fail per metric, the failure reason, the regeneration.
    assert "0.912 pass" in body and "150 FAIL" in body and "spectral_flux 150 &gt;= 100" in body
    assert "attempt 1 (seed 12)" in body and "Quality loop on" in body
    assert client.get("/listen/_static/listen.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/listen/_static/listen.css").status_code == 200
    assert client.get("/listen/_static/other.js").status_code == 404
    assert client.get(f"/listen/{OLD}").status_code == 200
    assert client.get("/listen/unknown-0000").status_code == 404


def test_audio_range_requests(client: TestClient, outputs: Path) -> None:
    path = outputs / KEY / "soundtrack.wav"
    data = path.read_bytes()
    whole = client.get(f"/listen/{KEY}/audio/soundtrack.wav")
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-type"] == "audio/wav"
    part = client.get(f"/listen/{KEY}/audio/soundtrack.wav", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    tail = client.get(
        f"/listen/{KEY}/audio/stems/transition_00/next_bass.wav", headers={"Range": "bytes=-100"}
    )
    assert tail.status_code == 206 and len(tail.content) == 100
    past = client.get(f"/listen/{KEY}/audio/soundtrack.wav", headers={"Range": f"bytes={len(data) + 10}-"})
    assert past.status_code == 416


@pytest.mark.parametrize(
    "tail",
    ["request.json", "summary.json", "../older-0123456789/segments/scene_00.wav", "%2e%2e/x.wav", "segments"],
)
def test_only_the_partitions_audio_is_served(client: TestClient, tail: str) -> None:
    assert client.get(f"/listen/{KEY}/audio/{tail}").status_code == 404


def test_picture_spans_the_track_edge_to_edge(client: TestClient) -> None:
    response = client.get(f"/listen/{KEY}/picture.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    from matplotlib.image import imread

    image = imread(io.BytesIO(response.content), format="png")
    assert image.shape[1] == WIDTH
    # The waveform band: the burst at 3 s is the only column filled top to bottom.
    wave = image[:WAVE_HEIGHT, :, :3].sum(axis=2)
    filled = (np.abs(wave - wave[0, 0]) > 0.1).sum(axis=0)
    column = int(np.argmax(filled))
    assert abs(column - BURST_AT / TOTAL * WIDTH) <= 1
    assert client.get(f"/listen/{KEY}/pictures/scene_00.png").status_code == 200
    assert client.get(f"/listen/{KEY}/pictures/soundtrack.png").status_code == 404
    assert client.get(f"/listen/{OLD}/picture.png").status_code == 404


def test_pages_open_by_default_even_with_an_api_key(outputs: Path) -> None:
    for client in _client(API_KEY="s3cret"):
        assert client.get(f"/listen/{KEY}").status_code == 200


def test_api_key_guard_with_header_query_and_cookie(outputs: Path) -> None:
    for client in _client(API_KEY="s3cret", LISTEN_REQUIRE_API_KEY="true"):
        audio = f"/listen/{KEY}/audio/soundtrack.wav"
        assert client.get(f"/listen/{KEY}").status_code == 401
        assert client.get(audio).status_code == 401
        assert client.get(f"/listen/{KEY}?key=wrong").status_code == 403
        assert client.get(audio, headers={"X-API-Key": "s3cret"}).status_code == 200
        page = client.get(f"/listen/{KEY}?key=s3cret")
        assert page.status_code == 200
        cookie = page.cookies.get("musicgen_listen")
        assert cookie and "s3cret" not in cookie
        # The browser's own requests for audio and pictures carry only the cookie.
        assert client.get(audio, headers={"Range": "bytes=0-9"}).status_code == 206
        client.cookies.clear()
        assert client.get(audio).status_code == 401


def test_sig3() -> None:
    assert [sig3(v) for v in (0.9956113920000007, 150.0, 1.44, 0.0, 12345.6, 1e12, -0.05, None)] == [
        "0.996", "150", "1.44", "0", "12346", "1e+12", "-0.0500", "–",
    ]  # fmt: skip
