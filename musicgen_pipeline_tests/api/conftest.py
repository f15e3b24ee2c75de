"""REST fixtures: a real server (uvicorn, free loopback port) on a temporary data folder and Dagster
instance with tiny-random models, shared per module; detached runs are stopped at teardown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from musicgen_pipeline_tests.api.server import ApiServer, server_env, stop_detached_runs

API_KEY = "test-key-123"


@pytest.fixture(scope="module")
def api_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api")


@pytest.fixture(scope="module")
def api_env(api_base: Path) -> dict[str, str]:
    return server_env(api_base, API_KEY=API_KEY, MAX_UPLOAD_MB="1", API_URL_ALLOWLIST="127.0.0.2")


@pytest.fixture(scope="module")
def server(api_base: Path, api_env: dict[str, str]) -> Iterator[ApiServer]:
    srv = ApiServer(api_env, api_base / "server.log").start()
    try:
        yield srv
    finally:
        srv.stop()
        stop_detached_runs(api_base / "data")


@pytest.fixture(scope="module")
def instance(server: ApiServer, api_base: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(api_base / "dagster_home")) as inst:
        yield inst
