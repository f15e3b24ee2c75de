"""Hostile inputs against a live `serve` process (the real HTTP path, real job creation, real runs).

`test_hostile_inputs.py` checks every refusal's words in-process; this checks what only a live server
shows: a burst of hostile bodies and uploads sent at the same instant, while `/health` is probed, gets
one-line 4xx answers, never a 5xx or a dropped connection; no job is created for any of them; and a good
job submitted right after runs through Dagster to `completed`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from musicgen_pipeline_tests.api.helpers import tone_wav_bytes
from musicgen_pipeline_tests.api.server import ApiServer, server_env, stop_detached_runs
from musicgen_pipeline_tests.api.test_hostile_inputs import HOSTILE_AUDIO, HOSTILE_BODIES

pytestmark = pytest.mark.slow
KEY = {"X-API-Key": "live-key"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApiServer]:
    env = server_env(tmp_path, API_KEY="live-key", MAX_UPLOAD_MB="1", API_TOTAL_MIN_SECONDS="1")
    srv = ApiServer(env, tmp_path / "server.log").start()
    try:
        yield srv
    finally:
        srv.stop()
        stop_detached_runs(tmp_path / "data")


def _send(url: str, case: tuple, answers: list, go: threading.Barrier) -> None:
    kind, path, payload = case[:3]
    go.wait()
    with httpx.Client(timeout=60) as http:
        try:
            if kind == "body":
                data = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
                response = http.post(
                    url + path, content=data, headers={**KEY, "Content-Type": "application/json"}
                )
            else:
                response = http.post(url + path, files={"file": (payload[0], payload[1])}, headers=KEY)
        except httpx.HTTPError as exc:  # a dropped connection is a failure of the service
            answers.append((case, None, f"{type(exc).__name__}: {exc}"))
            return
    answers.append((case, response.status_code, response.text))


def test_hostile_burst_on_a_live_server_is_refused_line_by_line_and_the_next_job_completes(
    server: ApiServer, tmp_path: Path
) -> None:
    cases = [("body", path, raw, status, words) for path, raw, status, words in HOSTILE_BODIES]
    cases += [("audio", "/separate", (name, data), 400, words) for name, data, words in HOSTILE_AUDIO]
    answers: list = []
    health: list[tuple[int | None, float]] = []
    stop = threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.wait(0.1):
                t = time.monotonic()
                try:
                    code: int | None = http.get(server.url + "/health").status_code
                except httpx.HTTPError:
                    code = None
                health.append((code, time.monotonic() - t))

    go = threading.Barrier(len(cases))
    threads = [threading.Thread(target=_send, args=(server.url, c, answers, go)) for c in cases]
    prober = threading.Thread(target=probe)
    prober.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    stop.set()
    prober.join()

    assert len(answers) == len(cases)
    for (_, path, _, status, words), code, text in answers:
        assert code == status, (path, words, code, text[:300])
        assert words in text and "\\n" not in text, (path, words, text[:300])
        assert len(text) < 2000
    assert health and all(code == 200 for code, _ in health), health
    assert server.proc is not None and server.proc.poll() is None
    # Nothing was created for any of them: the job store holds no job yet.
    assert not list((tmp_path / "data" / "api").glob("jobs/*")), "a hostile request created a job"

    # The service still does its work: a good job (real Dagster run, tiny-random models) completes.
    good = httpx.post(
        server.url + "/generate/soundtrack",
        json={
            "base_prompt": "strings",
            "scenes": [{"mood": "calm", "duration": 2}, {"duration": 2}],
            "crossfade_duration": 0.5,
        },
        headers=KEY,
        timeout=60,
    )
    assert good.status_code == 200, good.text
    job_id = good.json()["job_id"]
    upload = httpx.post(
        server.url + "/separate", files={"file": ("ok.wav", tone_wav_bytes(0.5))}, headers=KEY, timeout=60
    )
    assert upload.status_code == 200, upload.text
    for jid in (job_id, upload.json()["job_id"]):
        deadline = time.monotonic() + 600
        while (body := httpx.get(f"{server.url}/jobs/{jid}", timeout=30).json())["status"] not in (
            "completed",
            "failed",
        ):
            assert time.monotonic() < deadline, body
            time.sleep(0.5)
        assert body["status"] == "completed", body
