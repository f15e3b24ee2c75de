"""The one-host production topology as plain processes: code server, webserver, daemon.

Each is started exactly as README "Deploy" and deploy/systemd start it (same commands, the shipped
deploy/dagster.prod.yaml as $DAGSTER_HOME/dagster.yaml, deploy/workspace.grpc.yaml), in its own
session, logging to a file. On exit every one of them is stopped (SIGTERM, then SIGKILL after a grace
period), and so is any run worker left behind: found by the unique DAGSTER_HOME in its environment,
so nothing outside this topology is touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else name


@dataclass
class Topology:
    env: dict[str, str]
    logs: Path
    grpc_port: int
    web_port: int
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def graphql_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/graphql"

    def start(self, name: str, cmd: list[str]) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            cmd,
            cwd=str(ROOT),
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, chars: int = 4000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(encoding="utf-8", errors="replace")[-chars:] if path.exists() else ""

    def tails(self) -> str:
        return "\n".join(f"--- {name} ---\n{self.tail(name, 2500)}" for name in self.procs)


def wait_for(predicate, timeout: float, what: str, topology: Topology | None = None, interval: float = 1.0):
    """Poll `predicate` until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if topology is not None:
            topology.check_alive()
        if time.monotonic() > deadline:
            logs = topology.tails() if topology is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")
        time.sleep(interval)


def _grpc_ready(topology: Topology) -> bool:
    result = subprocess.run(
        [tool("dagster"), "api", "grpc-health-check", "-p", str(topology.grpc_port)],
        env=topology.env,
        capture_output=True,
        timeout=60,
    )
    return result.returncode == 0


def _web_ready(topology: Topology) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{topology.web_port}/server_info", timeout=5) as resp:
            return resp.status == 200
    except OSError:
        return False


def processes_with_env(key: str, value: str) -> list[int]:
    """Pids of this host's processes whose environment has key=value (readable ones only)."""
    needle = f"{key}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _stop(proc: subprocess.Popen, grace: float) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@contextlib.contextmanager
def dagster_topology(env: dict[str, str], logs: Path, grpc_port: int, web_port: int) -> Iterator[Topology]:
    workspace = str(ROOT / "deploy" / "workspace.grpc.yaml")
    env = dict(env, DAGSTER_GRPC_HOST="127.0.0.1", DAGSTER_GRPC_PORT=str(grpc_port))
    topology = Topology(env=env, logs=logs, grpc_port=grpc_port, web_port=web_port)
    try:
        topology.start(
            "code-server",
            [
                tool("dagster"),
                "api",
                "grpc",
                "-m",
                "musicgen_pipeline.definitions",
                "-a",
                "defs",
                "-h",
                "127.0.0.1",
                "-p",
                str(grpc_port),
            ],
        )
        wait_for(lambda: _grpc_ready(topology), 240, "the code server to serve", topology, interval=2.0)
        topology.start(
            "webserver", [tool("dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port), "-w", workspace]
        )
        topology.start("daemon", [tool("dagster-daemon"), "run", "-w", workspace])
        wait_for(lambda: _web_ready(topology), 240, "the webserver to answer", topology, interval=2.0)
        yield topology
    finally:
        for name in ("daemon", "webserver", "code-server"):
            if name in topology.procs:
                _stop(topology.procs[name], grace=20)
        for pid in processes_with_env("DAGSTER_HOME", env["DAGSTER_HOME"]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
