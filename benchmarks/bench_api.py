"""Status-poll latency of the REST API while a render runs (the old service stalled its event loop
during crossfades).

One command: `python benchmarks/bench_api.py` starts `musicgen-pipeline serve` on a free loopback port
with a temporary data folder and Dagster instance, measures 20 concurrent `GET /jobs/{id}` polls per
second with no render running (baseline), then submits a soundtrack and keeps polling at the same rate
until it completes, grouping latencies by the stage the job reported. Prints one table: baseline
beside each render stage, and the ratio of medians. Goal: median < 50 ms while rendering.

Models default to tiny-random (offline); set MUSICGEN_MODEL / DEMUCS_MODEL for real ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

GOAL_MEDIAN_MS = 50.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(base: Path, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.setdefault("MUSICGEN_MODEL", "tiny-random")
    env.setdefault("DEMUCS_MODEL", "tiny-random")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.update(MUSICGEN_DATA=str(base / "data"), DAGSTER_HOME=str(base / "dagster_home"))
    env.pop("API_KEY", None)
    log = (base / "server.log").open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "musicgen_pipeline.cli",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: (
            signal.signal(signal.SIGINT, signal.SIG_DFL),
            signal.signal(signal.SIGTERM, signal.SIG_DFL),
        ),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not start; see {base / 'server.log'}")


def wait_for_runs(data: Path, timeout: float = 60.0) -> None:
    """Let the detached run processes (their PIDs are in the pending records) finish before cleanup."""
    pids = []
    for record in data.glob("outputs/*/runs/*.json"):
        try:
            pids.append(int(json.loads(record.read_text())["pid"]))
        except (OSError, ValueError, KeyError):
            continue
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.5)


class Connection:
    """A bare keep-alive HTTP/1.1 connection: the client adds next to nothing to the measured latency."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get_json(self, path: str) -> dict:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
        await self.writer.drain()
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])
        return json.loads(await self.reader.readexactly(length))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def measure(port: int, job_id: str, rate: int, seconds: float | None) -> dict[str, list[float]]:
    """Fire `rate` concurrent polls each second; until `seconds` pass or the job ends (seconds=None)."""
    by_phase: dict[str, list[float]] = {}
    path = f"/jobs/{job_id}"
    connections = [Connection("127.0.0.1", port) for _ in range(rate)]

    async def one(conn: Connection) -> tuple[float, dict]:
        start = time.perf_counter()
        body = await conn.get_json(path)
        return (time.perf_counter() - start) * 1000, body

    try:
        start = time.monotonic()
        while True:
            tick = time.monotonic()
            results = await asyncio.gather(*(one(c) for c in connections))
            done = False
            for elapsed, body in results:
                status = body.get("status", "?")
                detail = body.get("progress_detail") or {}
                phase = detail.get("stage", status) if status == "processing" else status
                by_phase.setdefault(phase, []).append(elapsed)
                done = done or status in ("completed", "failed")
            if seconds is not None and time.monotonic() - start >= seconds:
                return by_phase
            if seconds is None and done:
                return by_phase
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    finally:
        for conn in connections:
            conn.close()


def row(name: str, values: list[float], baseline_median: float | None) -> str:
    values = sorted(values)
    median = statistics.median(values)
    p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
    ratio = f"{median / baseline_median:5.2f}x" if baseline_median else "  -   "
    return f"| {name:<22} | {len(values):6d} | {median:9.1f} | {p95:9.1f} | {values[-1]:9.1f} | {ratio} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=20, help="concurrent polls per second (default 20)")
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    parser.add_argument("--scenes", type=int, default=3)
    parser.add_argument("--scene-seconds", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-api-", ignore_cleanup_errors=True) as tmp:
        base = Path(tmp)
        port = free_port()
        server = start_server(base, port)
        base_url = f"http://127.0.0.1:{port}"
        try:
            # a finished job to poll for the baseline (nothing renders meanwhile)
            warm = httpx.post(
                f"{base_url}/generate", json={"prompt": "warm up", "duration": 10}, timeout=60
            ).json()
            while httpx.get(f"{base_url}/jobs/{warm['job_id']}", timeout=30).json()["status"] not in (
                "completed",
                "failed",
            ):
                time.sleep(1)
            baseline = asyncio.run(measure(port, warm["job_id"], args.rate, args.baseline_seconds))
            idle = [v for values in baseline.values() for v in values]

            scenes = [{"mood": f"scene {i + 1}", "duration": args.scene_seconds} for i in range(args.scenes)]
            job = httpx.post(
                f"{base_url}/generate/soundtrack",
                json={
                    "base_prompt": "cinematic orchestral soundtrack",
                    "scenes": scenes,
                    "crossfade_duration": 2.0,
                },
                timeout=60,
            ).json()
            started = time.monotonic()
            rendering = asyncio.run(measure(port, job["job_id"], args.rate, None))
            render_seconds = time.monotonic() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
            wait_for_runs(base / "data")

    idle_median = statistics.median(idle)
    during = [
        v for phase, values in rendering.items() if phase not in ("completed", "failed") for v in values
    ]
    print(f"GET /jobs/{{id}} latency (ms), {args.rate} concurrent polls per second; render of {args.scenes} x "
          f"{args.scene_seconds} s scenes took {render_seconds:.0f} s ({os.environ.get('MUSICGEN_MODEL', 'tiny-random')})")  # fmt: skip
    print("| phase                  |  polls |    median |       p95 |       max | ratio  |")
    print("|------------------------|--------|-----------|-----------|-----------|--------|")
    print(row("baseline (no render)", idle, None))
    for phase in ("queued", "generating", "crossfading", "finalizing"):
        if rendering.get(phase):
            print(row(f"render: {phase}", rendering[phase], idle_median))
    if during:
        print(row("render: all stages", during, idle_median))
        median = statistics.median(during)
        verdict = "PASS" if median < GOAL_MEDIAN_MS else "FAIL"
        print(f"goal: median < {GOAL_MEDIAN_MS:.0f} ms while rendering -> {median:.1f} ms {verdict}")
        return 0 if verdict == "PASS" else 1
    print("the render finished before any poll saw it running")
    return 1


if __name__ == "__main__":
    sys.exit(main())
