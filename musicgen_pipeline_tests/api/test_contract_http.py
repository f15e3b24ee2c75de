"""Contract tests that need no finished run: auth, validation (no run created), uploads, URLs,
/files, /jobs 404, /health, /metrics. Real server, real HTTP."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import dagster as dg
import httpx
import pytest

from musicgen_pipeline_tests.api.conftest import API_KEY
from musicgen_pipeline_tests.api.helpers import file_server, tone_wav_bytes
from musicgen_pipeline_tests.api.server import ApiServer

KEY = {"X-API-Key": API_KEY}
GOOD_GENERATE = {"prompt": "calm piano", "duration": 10}
GOOD_SOUNDTRACK = {
    "base_prompt": "cinematic strings",
    "scenes": [{"mood": "calm", "duration": 5}, {"duration": 5}],
}


def _runs(instance: dg.DagsterInstance) -> int:
    return instance.get_runs_count()


def _post(
    server: ApiServer, path: str, headers: dict[str, str] | None = None, **kwargs: object
) -> httpx.Response:
    return httpx.post(server.url + path, headers=headers, timeout=30, **kwargs)


# --- auth ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/generate", {"json": GOOD_GENERATE}),
        ("/generate/soundtrack", {"json": GOOD_SOUNDTRACK}),
        ("/separate", {"files": {"file": ("a.wav", tone_wav_bytes(0.2), "audio/wav")}}),
    ],
)
def test_key_required_on_job_creation(
    server: ApiServer, instance: dg.DagsterInstance, path: str, body: dict
) -> None:
    before = _runs(instance)
    for headers, status, detail in (
        (None, 401, "Missing X-API-Key header"),
        ({"X-API-Key": ""}, 401, "Missing X-API-Key header"),
        ({"X-API-Key": "wrong"}, 403, "Invalid API key"),
        ({"X-API-Key": API_KEY + "x"}, 403, "Invalid API key"),
    ):
        response = _post(server, path, headers, **body)
        assert response.status_code == status, response.text
        assert response.json() == {"detail": detail}
    assert _runs(instance) == before


@pytest.mark.parametrize("path", ["/generate", "/generate/soundtrack", "/separate"])
def test_key_is_checked_before_the_body(server: ApiServer, path: str) -> None:
    for headers, status in ((None, 401), ({"X-API-Key": "wrong"}, 403)):
        response = _post(
            server, path, {**(headers or {}), "Content-Type": "application/json"}, content=b"{not json"
        )
        assert response.status_code == status
    response = _post(server, path, {**KEY, "Content-Type": "application/json"}, content=b"{not json")
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_public_endpoints_need_no_key(server: ApiServer) -> None:
    assert httpx.get(server.url + "/health", timeout=60).status_code == 200
    assert httpx.get(server.url + "/metrics", timeout=30).status_code == 200
    assert httpx.get(server.url + "/metrics/json", timeout=30).status_code == 200
    assert httpx.get(server.url + "/jobs/0b7c6a8e-3f1d-4c2b-9a5e-6d4f3c2b1a09", timeout=30).status_code == 404


# --- validation: the standard 422 shape, and no run created ------------------------------------------


def _errors(response: httpx.Response) -> list[dict]:
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert isinstance(errors, list) and errors
    for error in errors:
        assert {"type", "loc", "msg", "input"} <= set(error)
        assert error["loc"][0] == "body"
    return errors


@pytest.mark.parametrize(
    ("path", "body", "loc", "error_type"),
    [
        ("/generate", {"duration": 30}, ["body", "prompt"], "missing"),
        ("/generate", {"prompt": ""}, ["body", "prompt"], "string_too_short"),
        ("/generate", {"prompt": "   "}, ["body", "prompt"], "string_too_short"),
        ("/generate", {"prompt": "x" * 501}, ["body", "prompt"], "string_too_long"),
        ("/generate", {"prompt": 5}, ["body", "prompt"], "string_type"),
        ("/generate", {"prompt": "x", "duration": "long"}, ["body", "duration"], "int_parsing"),
        ("/generate", {"prompt": "x", "duration": 9}, ["body", "duration"], "greater_than_equal"),
        ("/generate", {"prompt": "x", "duration": 601}, ["body", "duration"], "less_than_equal"),
        ("/generate", {"prompt": "x", "duration": 30.5}, ["body", "duration"], "int_from_float"),
        ("/generate", {"prompt": "x", "mood": "m" * 101}, ["body", "mood"], "string_too_long"),
        ("/generate", [1, 2], ["body"], "model_attributes_type"),
        ("/generate/soundtrack", {"scenes": [{"duration": 5}]}, ["body", "base_prompt"], "missing"),
        ("/generate/soundtrack", {"base_prompt": "x", "scenes": []}, ["body", "scenes"], "too_short"),
        ("/generate/soundtrack", {"base_prompt": "x", "scenes": "no"}, ["body", "scenes"], "list_type"),
        ("/generate/soundtrack", {"base_prompt": "x", "scenes": [{"mood": "a"}]}, ["body", "scenes", 0, "duration"], "missing"),
        ("/generate/soundtrack", {"base_prompt": "x", "scenes": [{"duration": 601}]}, ["body", "scenes", 0, "duration"], "less_than_equal"),
        ("/generate/soundtrack", {"base_prompt": "x", "scenes": [{"duration": 0}]}, ["body", "scenes", 0, "duration"], "greater_than_equal"),
        ("/generate/soundtrack", {"base_prompt": "x", "scenes": [{"duration": 2}, {"duration": 2}]}, ["body", "scenes"], "value_error"),
        ("/generate/soundtrack", {"base_prompt": "x", "scenes": [{"duration": 500}] * 4}, ["body", "scenes"], "value_error"),
        ("/generate/soundtrack", {"base_prompt": "x", "scenes": [{"duration": 5}] * 101}, ["body", "scenes"], "too_long"),
        ("/generate/soundtrack", {**GOOD_SOUNDTRACK, "crossfade_duration": 6}, ["body", "crossfade_duration"], "less_than_equal"),
        ("/generate/soundtrack", {**GOOD_SOUNDTRACK, "crossfade_duration": 0.1}, ["body", "crossfade_duration"], "greater_than_equal"),
        ("/generate/soundtrack", {**GOOD_SOUNDTRACK, "use_beat_aligned_crossfade": "maybe"}, ["body", "use_beat_aligned_crossfade"], "bool_parsing"),
        ("/generate/soundtrack", {**GOOD_SOUNDTRACK, "melody_audio_url": "file:///etc/passwd"}, ["body", "melody_audio_url"], "value_error"),
        # refused, not silently ignored: the configured model (tiny-random) has no melody conditioning
        (
            "/generate/soundtrack",
            {**GOOD_SOUNDTRACK, "melody_audio_url": "http://127.0.0.2:9/melody.wav"},
            ["body", "melody_audio_url"],
            "value_error",
        ),
        # the pipeline's own rule: a crossfade at most half the shortest scene
        ("/generate/soundtrack", {**GOOD_SOUNDTRACK, "scenes": [{"duration": 3}, {"duration": 5}], "crossfade_duration": 2.0}, ["body", "crossfade_duration"], "value_error"),
        ("/separate", {"audio_url": "ftp://example.com/a.wav"}, ["body", "audio_url"], "value_error"),
        ("/separate", {"audio_url": "http://example.com/a.wav", "stems": 3}, ["body", "stems"], "value_error"),
        ("/separate", {"stems": 4}, ["body", "audio_url"], "missing"),
    ],
)  # fmt: skip
def test_bad_bodies_are_standard_422_and_create_no_run(
    server: ApiServer, instance: dg.DagsterInstance, path: str, body: object, loc: list, error_type: str
) -> None:
    before = _runs(instance)
    errors = _errors(_post(server, path, KEY, json=body))
    assert any(e["loc"] == loc and e["type"] == error_type for e in errors), errors
    assert _runs(instance) == before


def test_malformed_json_is_standard_422(server: ApiServer, instance: dg.DagsterInstance) -> None:
    before = _runs(instance)
    for path in ("/generate", "/generate/soundtrack", "/separate"):
        response = _post(
            server, path, {**KEY, "Content-Type": "application/json"}, content=b'{"prompt": "x",'
        )
        errors = _errors(response)
        assert errors[0]["type"] == "json_invalid" and errors[0]["msg"] == "JSON decode error"
    assert _runs(instance) == before


# --- uploads -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "status", "words"),
    [
        (b"", 400, "empty (0 bytes)"),
        (b"this is not audio at all, just text" * 10, 400, "not an audio file"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", 400, "not an audio file"),
        (b"\0" * (1024 * 1024 + 10), 413, "MAX_UPLOAD_MB"),
    ],
)
def test_bad_uploads_are_refused_before_a_run(
    server: ApiServer, instance: dg.DagsterInstance, api_base: Path, content: bytes, status: int, words: str
) -> None:
    before = _runs(instance)
    response = _post(server, "/separate", KEY, files={"file": ("song.wav", content, "audio/wav")})
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]
    assert _runs(instance) == before
    uploads = api_base / "data" / "uploads"
    assert not uploads.exists() or not [p for p in uploads.iterdir() if not p.name.startswith(".")]


def test_upload_form_errors(server: ApiServer, instance: dg.DagsterInstance) -> None:
    before = _runs(instance)
    errors = _errors(
        _post(server, "/separate", KEY, data={"stems": "4"}, files={"other": ("a.wav", b"x", "audio/wav")})
    )
    assert errors[0]["loc"] == ["body", "file"] and errors[0]["type"] == "missing"
    errors = _errors(
        _post(server, "/separate", KEY, data={"stems": "5"}, files={"file": ("a.wav", tone_wav_bytes(0.1))})
    )
    assert errors[0]["loc"] == ["body", "stems"]
    errors = _errors(
        _post(server, "/separate", KEY, data={"stems": "two"}, files={"file": ("a.wav", tone_wav_bytes(0.1))})
    )
    assert errors[0]["type"] == "int_parsing"
    assert _runs(instance) == before


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/a.wav",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost/a.wav",
        "http://[::1]/x",
    ],
)
def test_audio_url_to_internal_addresses_is_refused(
    server: ApiServer, instance: dg.DagsterInstance, url: str
) -> None:
    before = _runs(instance)
    response = _post(server, "/separate", KEY, json={"audio_url": url})
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith("audio_url: address ")
    assert "refused" in response.json()["detail"]
    assert _runs(instance) == before


def test_audio_url_redirect_into_the_metadata_address_is_refused(
    server: ApiServer, instance: dg.DagsterInstance
) -> None:
    before = _runs(instance)
    routes = {"/r": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"", 0.0),
              "/text": (200, {}, b"hello, not audio", 0.0)}  # fmt: skip
    with file_server(routes, host="127.0.0.2") as srv:
        base = f"http://127.0.0.2:{srv.server_address[1]}"
        response = _post(server, "/separate", KEY, json={"audio_url": f"{base}/r"})
        assert response.status_code == 400 and "169.254.169.254" in response.json()["detail"]
        response = _post(server, "/separate", KEY, json={"audio_url": f"{base}/text"})
        assert response.status_code == 400 and "not an audio file" in response.json()["detail"]
    assert _runs(instance) == before


# --- files, jobs, health, metrics --------------------------------------------------------------------


def _raw_get(server: ApiServer, raw_path: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", raw_path)  # sent as is: no client-side normalisation of ../
    response = conn.getresponse()
    body = json.loads(response.read() or b"null")
    conn.close()
    return response.status, body


@pytest.mark.parametrize(
    "raw_path",
    [
        "/files/..%2F..%2F..%2Fetc%2Fpasswd",
        "/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/files/%252e%252e%252fetc%252fpasswd",
        "/files/../../etc/passwd",
        "/files/..%5c..%5cetc%5cpasswd",
        "/files/%2Fetc%2Fpasswd",
    ],
)
def test_files_traversal_is_access_denied(server: ApiServer, raw_path: str) -> None:
    assert _raw_get(server, raw_path) == (403, {"detail": "Access denied"})


def test_files_and_jobs_not_found(server: ApiServer) -> None:
    assert _raw_get(server, "/files/nothing.wav") == (404, {"detail": "File not found"})
    assert _raw_get(server, "/files/0b7c6a8e-3f1d-4c2b-9a5e-6d4f3c2b1a09_soundtrack.wav") == (
        404,
        {"detail": "File not found"},
    )
    assert _raw_get(server, "/jobs/0b7c6a8e-3f1d-4c2b-9a5e-6d4f3c2b1a09") == (
        404,
        {"detail": "Job not found"},
    )
    assert _raw_get(server, "/jobs/not-a-uuid") == (404, {"detail": "Job not found"})
    assert _raw_get(server, "/jobs/..%2F..%2Fapi") == (404, {"detail": "Job not found"})


def test_health_shape(server: ApiServer) -> None:
    body = httpx.get(server.url + "/health", timeout=60).json()
    assert body == {
        "status": "healthy",
        "device": "cpu",
        "gpu_available": False,
        "mps_available": False,
        "models_loaded": {"musicgen": True, "demucs": True},
    }


def test_metrics_are_our_own(server: ApiServer) -> None:
    text = httpx.get(server.url + "/metrics", timeout=30).text
    for name in (
        "musicgen_jobs{",
        "musicgen_queue_length",
        "musicgen_job_duration_seconds_bucket",
        "musicgen_generation_seconds_bucket",
        "musicgen_generation_real_time_factor_bucket",
        "musicgen_regenerations_total",
        "musicgen_api_requests_total",
        "musicgen_api_request_duration_seconds_bucket",
    ):
        assert name in text, name
    summary = httpx.get(server.url + "/metrics/json", timeout=30).json()
    assert set(summary) == {
        "jobs_total", "jobs_completed", "jobs_failed", "jobs_in_progress",
        "avg_generation_time_seconds", "avg_soundtrack_time_seconds", "avg_separation_time_seconds",
    }  # fmt: skip
