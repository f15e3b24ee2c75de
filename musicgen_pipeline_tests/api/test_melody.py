"""`melody_audio_url` is honoured: fetched (SSRF-guarded), stored, and given to the melody model for
every scene; refused up front (422, no run) when the configured model has no melody conditioning."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import pytest

from musicgen_pipeline_tests.api.conftest import API_KEY
from musicgen_pipeline_tests.api.helpers import file_server, tone_wav_bytes
from musicgen_pipeline_tests.api.server import ApiServer, server_env, stop_detached_runs
from musicgen_pipeline_tests.api.test_jobs_e2e import poll

KEY = {"X-API-Key": API_KEY}
SOUNDTRACK = {
    "base_prompt": "solo piano",
    "scenes": [{"mood": "tender", "duration": 4}, {"mood": "hopeful", "duration": 4}],
    "crossfade_duration": 1.0,
}


@pytest.fixture(scope="module")
def melody_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, Path]]:
    base = tmp_path_factory.mktemp("api-melody")
    env = server_env(
        base, API_KEY=API_KEY, API_URL_ALLOWLIST="127.0.0.2", MUSICGEN_MODEL="tiny-random-melody"
    )
    srv = ApiServer(env, base / "server.log").start()
    try:
        yield srv, base
    finally:
        srv.stop()
        stop_detached_runs(base / "data")


def test_melody_reference_reaches_every_scene_of_a_melody_model(
    melody_server: tuple[ApiServer, Path],
) -> None:
    server, base = melody_server
    reference = tone_wav_bytes(3.0, rate=32_000, freq=392.0, channels=1)
    with file_server(
        {"/tune.wav": (200, {"Content-Type": "audio/wav"}, reference, 0.0)}, host="127.0.0.2"
    ) as srv:
        url = f"http://127.0.0.2:{srv.server_address[1]}/tune.wav"
        response = httpx.post(
            f"{server.url}/generate/soundtrack",
            headers=KEY,
            json={**SOUNDTRACK, "melody_audio_url": url},
            timeout=60,
        )
    assert response.status_code == 200, response.text
    job_id = response.json()["job_id"]
    final = poll(server, job_id)[-1]
    assert final["status"] == "completed", final
    assert final["result_urls"] == [f"/files/{job_id}_soundtrack.wav"]

    with dg.DagsterInstance.from_config(str(base / "dagster_home")) as instance:
        run = instance.get_run_by_id(job_id)
        assert run is not None
        key = run.tags["dagster/partition"]
    stored = json.loads((base / "data" / "outputs" / key / "request.json").read_text())
    melody_path = Path(stored["melody"])
    # stored under the data folder with a name the client did not choose, byte for byte what was served
    assert melody_path.is_relative_to(base / "data") and "tune" not in melody_path.name
    assert melody_path.read_bytes() == reference


def test_melody_with_a_model_without_melody_conditioning_is_refused_before_any_run(
    server: ApiServer, instance: dg.DagsterInstance
) -> None:
    before = len(instance.get_run_records())
    response = httpx.post(
        f"{server.url}/generate/soundtrack",
        headers=KEY,
        json={**SOUNDTRACK, "melody_audio_url": "http://127.0.0.2:9/tune.wav"},
        timeout=30,
    )
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "melody_audio_url"]
    assert "tiny-random" in error["msg"] and "melody" in error["msg"]
    assert len(instance.get_run_records()) == before
