"""No job is accepted without MIN_FREE_DISK_MB free on the data disk: 507 in one line, nothing stored,
no run started (in-process app; job creation would be recorded, not run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from musicgen_pipeline.api.app import create_app
from musicgen_pipeline.settings import get_settings
from musicgen_pipeline_tests.api.helpers import tone_wav_bytes


def test_jobs_refused_with_507_when_the_disk_is_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUSICGEN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("MUSICGEN_MODEL", "tiny-random")
    monkeypatch.setenv("API_KEY", "")
    monkeypatch.setenv("MIN_FREE_DISK_MB", "1e12")  # more than any disk
    app = create_app(get_settings())
    submitted: list[Any] = []
    monkeypatch.setattr(app.state.jobs, "submit_soundtrack", lambda *a: submitted.append(a))
    monkeypatch.setattr(app.state.jobs, "submit_separation", lambda *a: submitted.append(a))
    with TestClient(app, raise_server_exceptions=False) as client:
        for response in (
            client.post("/generate", json={"prompt": "calm piano", "duration": 10}),
            client.post("/separate", files={"file": ("a.wav", tone_wav_bytes(0.2), "audio/wav")}),
        ):
            assert response.status_code == 507, response.text
            detail = response.json()["detail"]
            assert "job not started" in detail and "MIN_FREE_DISK_MB" in detail and "\n" not in detail
        assert client.get("/health").status_code == 200
    assert submitted == []
    assert not (tmp_path / "data" / "uploads").exists() or not any((tmp_path / "data" / "uploads").iterdir())
