"""`dagster dev` (webserver + daemon) as a test fixture, and the GraphQL calls the UI itself makes.

Started with default signal handlers restored in the child (a background shell may leave SIGINT and
SIGTERM ignored: DESIGN.md) in its own session, and stopped by its own PID (SIGTERM, then SIGKILL of
its process group, which holds only what it started).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

LOCATION = "musicgen_pipeline"
REPOSITORY = "__repository__"
ASSET_JOB = "__ASSET_JOB"

ADD_PARTITION = """
mutation ($location: String!, $repo: String!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: {repositoryLocationName: $location, repositoryName: $repo},
                      partitionsDefName: $name, partitionKey: $key) { __typename }
}"""
LAUNCH = """
mutation ($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
RUNS = """
query {
  runsOrError(limit: 50) { ... on Runs { results { runId jobName status tags { key value } } } }
}"""


def _default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


class DagsterDev:
    def __init__(self, env: dict[str, str], cwd: Path, port: int, log_path: Path) -> None:
        self.env, self.cwd, self.port, self.log_path = env, cwd, port, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300.0) -> DagsterDev:
        dagster = Path(sys.executable).with_name("dagster")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(self.port)],
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_default_signals,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dagster dev exited:\n{self.log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError, ValueError):
                data = self.graphql("{ assetNodes { id } }", timeout=10)
                if data.get("assetNodes"):
                    return self
            time.sleep(1.0)
        self.stop()
        raise RuntimeError(f"dagster dev not ready in {timeout} s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what it started
            self.proc.wait(timeout=10)

    def graphql(self, query: str, variables: dict[str, Any] | None = None, timeout: float = 60) -> dict:
        response = httpx.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=timeout
        )
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def add_partition(self, partitions_def: str, key: str) -> None:
        data = self.graphql(
            ADD_PARTITION, {"location": LOCATION, "repo": REPOSITORY, "name": partitions_def, "key": key}
        )
        assert data["addDynamicPartition"]["__typename"] == "AddDynamicPartitionSuccess", data

    def materialize(self, assets: list[str], partition: str, run_config: dict[str, Any]) -> str:
        """What the UI's Materialize button sends: the implicit asset job, an asset selection, a partition."""
        params = {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "pipelineName": ASSET_JOB,
                "assetSelection": [{"path": [a]} for a in assets],
                "assetCheckSelection": [],
            },
            "runConfigData": run_config,
            "mode": "default",
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
        }
        result = self.graphql(LAUNCH, {"params": params})["launchPipelineExecution"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def runs(self) -> list[dict[str, Any]]:
        runs = self.graphql(RUNS)["runsOrError"]["results"]
        for run in runs:
            run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
        return runs
