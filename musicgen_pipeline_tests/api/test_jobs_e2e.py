"""Jobs end to end on a real server: Dagster runs with tiny-random models, polled to `completed`,
downloaded and checked as 16-bit PCM WAV; the known client; a restart of the REST process mid-job."""

from __future__ import annotations

import json
import time
import wave
from pathlib import Path

import dagster as dg
import httpx
import numpy as np
import pytest
import soundfile as sf

from musicgen_pipeline_tests.api.conftest import API_KEY
from musicgen_pipeline_tests.api.helpers import file_server, tone_wav_bytes
from musicgen_pipeline_tests.api.known_client import KnownClient
from musicgen_pipeline_tests.api.server import ApiServer, server_env, stop_detached_runs

pytestmark = pytest.mark.slow
KEY = {"X-API-Key": API_KEY}
STATUS_KEYS = {"job_id", "status", "progress", "progress_detail", "result_urls", "error"}


def wav_info(path: Path) -> tuple[int, int, int, float]:
    """(bytes per sample, rate, channels, seconds) read with Python's `wave` module."""
    with wave.open(str(path), "rb") as w:
        return w.getsampwidth(), w.getframerate(), w.getnchannels(), w.getnframes() / w.getframerate()


def poll(server: ApiServer, job_id: str, timeout: float = 420.0) -> list[dict]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(f"{server.url}/jobs/{job_id}", timeout=30).json()
        assert set(body) - {"queue_position"} == STATUS_KEYS  # queue_position: only while queued
        assert isinstance(body["progress"], (int, float)) and 0 <= body["progress"] <= 100
        seen.append(body)
        if body["status"] in ("completed", "failed"):
            return seen
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} not finished in {timeout} s; last {seen[-1]}")


def test_known_client_renders_a_two_scene_soundtrack_and_four_stems(
    server: ApiServer, tmp_path: Path, api_base: Path
) -> None:
    client = KnownClient(server.url, API_KEY, tmp_path)
    track = client.music_for_clips(
        [("peaceful morning", 5.0), ("joyful celebration", 5.4)], "warm acoustic guitar"
    )
    width, rate, channels, seconds = wav_info(track)
    assert (width, rate) == (2, 32_000)
    # The file is the pipeline's soundtrack: its length is what the transition report says, and that is
    # the two scenes end to end (the known client sends whole seconds: 5 + 5 s) within one frame,
    # whatever tempo matching did.
    (report_path,) = (api_base / "data" / "outputs").glob("warm-acoustic-guitar-*/transition_report.json")
    duration = json.loads(report_path.read_text())["duration"]
    assert abs(seconds - duration["actual"]) < 1e-3
    assert abs(duration["actual"] - duration["expected"]) <= duration["tolerance"]
    assert duration["expected"] == pytest.approx(10.0)
    assert abs(seconds - 10.0) <= 1 / 32_000
    assert track.name.endswith("_soundtrack.wav") and len(track.name.split("_")[0]) == 8
    statuses = [s for s, _, _ in client.progress_seen]
    assert statuses[-1] == "completed" and set(statuses) <= {"queued", "processing", "completed"}
    progress = [p for _, p, _ in client.progress_seen]
    assert progress == sorted(progress) and progress[-1] == 100
    for _, _, detail in client.progress_seen:
        assert detail is not None and detail["total_scenes"] == 2
        assert 0 <= detail["current_scene"] <= 2 and detail["stage"] in (
            "generating",
            "crossfading",
            "finalizing",
        )

    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    assert 'musicgen_transition_score_count{metric="mfcc_similarity"} 1.0' in text  # one seam, scored
    assert 'musicgen_jobs{status="completed",type="soundtrack"} 1.0' in text

    stems = client.stems(track)
    assert sorted(stems) == ["bass", "drums", "other", "vocals"]
    arrays = {}
    for name, path in stems.items():
        width, rate, channels, stem_seconds = wav_info(path)
        assert (width, rate, channels) == (2, 44_100, 2)
        assert abs(stem_seconds - seconds) < 0.01
        arrays[name] = sf.read(str(path), dtype="float32", always_2d=True)[0]
    # four different signals (random-weight Demucs makes no musical sense; the sum check is in test_separation)
    assert len({round(float(np.abs(a).mean()), 6) for a in arrays.values()}) == 4


def test_two_stem_separation_of_an_allowlisted_url(server: ApiServer) -> None:
    body = tone_wav_bytes(2.0, rate=22_050, channels=1)
    with file_server({"/song.wav": (200, {"Content-Type": "audio/wav"}, body, 0.0)}, host="127.0.0.2") as srv:
        url = f"http://127.0.0.2:{srv.server_address[1]}/song.wav"
        response = httpx.post(
            f"{server.url}/separate", headers=KEY, json={"audio_url": url, "stems": "2"}, timeout=60
        )
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["status"] == "queued"
    final = poll(server, job["job_id"])[-1]
    assert final["status"] == "completed", final
    assert final["progress"] == 100 and final["progress_detail"] is None and final["error"] is None
    assert final["result_urls"] == [
        f"/files/{job['job_id']}_vocals.wav",
        f"/files/{job['job_id']}_accompaniment.wav",
    ]
    for url in final["result_urls"]:
        response = httpx.get(server.url + url, timeout=30)
        assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
        data, rate = sf.read(__import__("io").BytesIO(response.content), dtype="int16", always_2d=True)
        assert rate == 44_100 and data.shape == (88_200, 2)


def test_generate_survives_a_restart_of_the_rest_process(
    server: ApiServer, api_env: dict[str, str], api_base: Path, instance: dg.DagsterInstance
) -> None:
    response = httpx.post(f"{server.url}/generate", headers=KEY, json={"prompt": "calm piano", "mood": "dreamy", "duration": "10", "extra": 1}, timeout=60)  # fmt: skip
    assert response.status_code == 200, response.text
    job_id = response.json()["job_id"]
    assert response.json() == {"job_id": job_id, "status": "queued"}
    server.stop(hard=True)  # the REST process dies mid-job; the run goes on in its own process
    replacement = ApiServer(api_env, api_base / "server-2.log")
    replacement.start()
    try:
        seen = poll(replacement, job_id)
        final = seen[-1]
        assert final["status"] == "completed", final
        assert final["result_urls"] == [f"/files/{job_id}_generated.wav"]
        assert all(s["progress_detail"] is None for s in seen)
        path = api_base / "g.wav"
        path.write_bytes(httpx.get(replacement.url + final["result_urls"][0], timeout=30).content)
        assert wav_info(path)[:2] == (2, 32_000) and abs(wav_info(path)[3] - 10.0) < 0.05
        run = instance.get_run_by_id(job_id)  # the job id is the Dagster run id (visible in the UI)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"].startswith("dreamy-calm-piano-")
        summary = httpx.get(replacement.url + "/metrics/json", timeout=30).json()
        assert summary["jobs_completed"] >= 1 and summary["avg_generation_time_seconds"] > 0
        text = httpx.get(replacement.url + "/metrics", timeout=30).text
        assert 'musicgen_jobs{status="completed",type="generate"} 1.0' in text
    finally:
        replacement.stop()
        server.start()  # later tests in the module use the original fixture server


def test_no_key_configured_means_open(tmp_path: Path) -> None:
    srv = ApiServer(server_env(tmp_path), tmp_path / "open.log").start()
    try:
        response = httpx.post(f"{srv.url}/generate", json={"prompt": "x", "duration": 5000}, timeout=30)
        assert response.status_code == 422  # reached validation: no key needed
        response = httpx.post(f"{srv.url}/separate", files={"file": ("a.wav", b"", "audio/wav")}, timeout=30)
        assert response.status_code == 400
    finally:
        srv.stop()
        stop_detached_runs(tmp_path / "data")


def test_a_failing_run_is_reported_failed_with_its_error(tmp_path: Path) -> None:
    env = server_env(tmp_path, MUSICGEN_MODEL=str(tmp_path / "no-such-model"))
    srv = ApiServer(env, tmp_path / "failing.log").start()
    try:
        health = httpx.get(f"{srv.url}/health", timeout=60).json()
        assert health["models_loaded"] == {"musicgen": False, "demucs": True}
        response = httpx.post(f"{srv.url}/generate", json={"prompt": "x", "duration": 10}, timeout=60)
        assert response.status_code == 200
        final = poll(srv, response.json()["job_id"], timeout=240)[-1]
        assert final["status"] == "failed"
        assert final["result_urls"] is None and final["progress_detail"] is None
        assert final["error"].startswith("scene_segments: ModelUnavailableError: MusicGen model ")
        assert "no-such-model" in final["error"] and "tiny-random" in final["error"]
        summary = httpx.get(f"{srv.url}/metrics/json", timeout=30).json()
        assert (summary["jobs_total"], summary["jobs_failed"], summary["jobs_completed"]) == (1, 1, 0)
        assert summary["avg_generation_time_seconds"] is None
    finally:
        srv.stop()
        stop_detached_runs(tmp_path / "data")


def test_uploaded_names_are_never_used_for_storage(server: ApiServer, api_base: Path) -> None:
    audio = tone_wav_bytes(0.5, rate=16_000, channels=1)
    files = {
        "file": ("../../../../tmp/evil name.wav", audio, "text/plain")
    }  # the content type is not trusted
    response = httpx.post(f"{server.url}/separate", headers=KEY, files=files, data={"stems": "4"}, timeout=60)
    assert response.status_code == 200, response.text
    job_id = response.json()["job_id"]
    uploads = api_base / "data" / "uploads"
    assert (uploads / f"{job_id}.wav").read_bytes() == audio
    assert not any("evil" in p.name for p in api_base.rglob("*")) and not Path("/tmp/evil name.wav").exists()
    assert poll(server, job_id)[-1]["status"] == "completed"
