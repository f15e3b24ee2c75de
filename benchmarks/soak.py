"""Soak: a burst of concurrent clients against a live `serve`, then a crash of the server and of a run.

One command: `python benchmarks/soak.py` (defaults: 50 clients, tiny-random models, loopback only).

1. Starts `musicgen-pipeline serve` on a free loopback port with a temporary data folder and Dagster
   instance (``max_concurrent_runs`` = ``--slots``, ``API_MAX_QUEUED_JOBS`` = ``--max-queued``).
2. Baseline: one soundtrack job alone, submitted and polled to completion (seconds).
3. Burst: `--clients` threads each POST one ``/generate/soundtrack`` job at the same instant (the real
   HTTP path); 503 answers (queue full) are counted as refused, with their ``Retry-After``.
   While jobs run, a sampler records every process of this soak (found by its data folder in the
   process environment): peak count of run workers, of all processes, peak summed RSS; a prober
   times ``GET /health`` and ``GET /jobs/{id}`` every 0.2 s until the crash.
4. Crash mid-way: once the first burst job has completed, SIGKILL of the server and of the worker of
   a job in the first part of its render (status ``processing``, progress <= 60 %, found through the
   pending records: a warm worker runs several jobs); the server is started again on the same data
   folder. That job must end failed (its worker died), every other one completed, and no Dagster run
   of the soak may stay unfinished.
5. Every accepted job is polled until final (completed/failed) or until `--max-seconds`; a job not
   final by then, or unknown to the server, is **lost** (must be 0).

Prints one table (counts, times, peaks, latency percentiles) and the ratio of the first burst job's
time to the baseline. Everything it starts it stops (the server, and any run worker left behind).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

API_KEY = "soak-key"
HEADERS = {"X-API-Key": API_KEY}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- processes of this soak ---------------------------------------------------------------------------


def soak_processes(marker: str) -> list[int]:
    """PIDs whose environment names this soak's data folder (server, dispatcher, run workers)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ:
            out.append(int(entry))
    return out


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _is_worker(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"musicgen_pipeline.launch" in cmd and b"dispatch" not in cmd


def _runs(pid: int, run_ids: list[str], data_dir: Path) -> str | None:
    """The run id (one of `run_ids`) worker `pid` executes now, if any: the newest pending record
    naming that pid (a warm worker runs several runs, its command line names only its first)."""
    wanted = set(run_ids)
    best: tuple[float, str] | None = None
    for record in data_dir.glob("outputs/*/runs/*.json"):
        try:
            data = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        if data.get("pid") == pid and data.get("run_id") in wanted:
            started = float(data.get("started") or 0.0)
            if best is None or started > best[0]:
                best = (started, data["run_id"])
    return best[1] if best else None


def _worker_roots(pids: list[int]) -> int:
    """How many of `pids` are run workers, not counting a worker's own short-lived forks (a child
    between fork and exec still shows its parent's command line)."""
    workers = {p for p in pids if _is_worker(p)}
    return sum(1 for p in workers if _ppid(p) not in workers)


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@dataclass
class Peaks:
    workers: int = 0
    processes: int = 0
    rss: int = 0


def sample(marker: str, peaks: Peaks, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        pids = [p for p in soak_processes(marker) if _alive(p)]
        peaks.workers = max(peaks.workers, _worker_roots(pids))
        peaks.processes = max(peaks.processes, len(pids))
        peaks.rss = max(peaks.rss, sum(_rss_bytes(p) for p in pids))


# --- the server -----------------------------------------------------------------------------------------


class Server:
    def __init__(self, base: Path, env: dict[str, str]) -> None:
        self.base, self.env, self.port = base, env, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> None:
        with (self.base / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "musicgen_pipeline.cli", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/openapi.json", timeout=5).status_code == 200:
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: see {self.base / 'server.log'}")
            time.sleep(0.3)
        raise RuntimeError(f"server not ready in {timeout} s")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


# --- clients --------------------------------------------------------------------------------------------


def job_body(n: int, scene_seconds: float) -> dict:
    return {
        "base_prompt": f"soak job {n}",
        "scenes": [
            {"mood": "calm", "duration": scene_seconds},
            {"mood": "bright", "duration": scene_seconds},
        ],
        "crossfade_duration": 0.5,
        "seed": 1000 + n,
    }


@dataclass
class Burst:
    accepted: dict[str, float] = field(default_factory=dict)  # job id -> submit time
    refused: int = 0
    retry_after: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def client(url: str, n: int, scene_seconds: float, go: threading.Barrier, burst: Burst) -> None:
    go.wait()
    t = time.monotonic()
    try:
        response = httpx.post(
            f"{url}/generate/soundtrack", headers=HEADERS, json=job_body(n, scene_seconds), timeout=120
        )
    except httpx.HTTPError as exc:
        with burst.lock:
            burst.errors.append(f"client {n}: {exc!r}")
        return
    with burst.lock:
        if response.status_code == 200:
            burst.accepted[response.json()["job_id"]] = t
        elif response.status_code == 503:
            burst.refused += 1
            burst.retry_after.add(response.headers.get("Retry-After", "?"))
        else:
            burst.errors.append(f"client {n}: HTTP {response.status_code} {response.text[:120]}")


def probe(server: Server, burst: Burst, lat: dict[str, list[float]], stop: threading.Event) -> None:
    with httpx.Client(timeout=30) as http:
        while not stop.wait(0.2):
            for name, path in (("/health", "/health"), ("/jobs/{id}", None)):
                if path is None:
                    with burst.lock:
                        ids = list(burst.accepted)
                    if not ids:
                        continue
                    path = f"/jobs/{random.choice(ids)}"
                t = time.monotonic()
                try:
                    http.get(f"{server.url}{path}")
                except httpx.HTTPError:
                    continue  # the server is down (the crash): not a latency
                lat[name].append(time.monotonic() - t)


def status(server: Server, job_id: str) -> dict | None:
    try:
        response = httpx.get(f"{server.url}/jobs/{job_id}", timeout=30)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else {"status": f"http {response.status_code}"}


def unfinished_runs(home: Path, *, wait_seconds: float) -> list[str]:
    """'<job> <STATUS>' of the instance's runs not finished, after waiting up to `wait_seconds`."""
    import dagster as dg

    deadline = time.monotonic() + wait_seconds
    with dg.DagsterInstance.from_config(str(home)) as instance:
        while True:
            left = [f"{r.job_name} {r.status.value}" for r in instance.get_runs() if not r.is_finished]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(2.0)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- the soak -------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clients", type=int, default=50, help="concurrent clients, one job each (default 50)"
    )
    parser.add_argument(
        "--slots", type=int, default=2, help="max_concurrent_runs of the instance (default 2)"
    )
    parser.add_argument("--max-queued", type=int, default=50, help="API_MAX_QUEUED_JOBS (default 50)")
    parser.add_argument("--scene-seconds", type=float, default=2.0, help="each job: two scenes this long")
    parser.add_argument("--max-seconds", type=float, default=1800, help="bound on the whole soak")
    parser.add_argument("--no-crash", action="store_true", help="skip the server/run kill")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="musicgen-soak-"))
    home = base / "dagster_home"
    home.mkdir()
    from musicgen_pipeline.instance import instance_yaml

    (home / "dagster.yaml").write_text(
        instance_yaml().replace("max_concurrent_runs: 4", f"max_concurrent_runs: {args.slots}"),
        encoding="utf-8",
    )
    env = dict(os.environ)
    env.setdefault("MUSICGEN_MODEL", "tiny-random")
    env.setdefault("DEMUCS_MODEL", "tiny-random")
    env.update(
        MUSICGEN_DATA=str(base / "data"),
        DAGSTER_HOME=str(home),
        API_KEY=API_KEY,
        API_MAX_QUEUED_JOBS=str(args.max_queued),
        API_TOTAL_MIN_SECONDS="1",
        USE_QUALITY_LOOP="false",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    marker = f"MUSICGEN_DATA={base / 'data'}"
    server = Server(base, env)
    began = time.monotonic()
    stop = threading.Event()
    peaks = Peaks()
    lat: dict[str, list[float]] = {"/health": [], "/jobs/{id}": []}
    burst = Burst()
    crashed: dict[str, object] = {}
    unfinished: list[str] = []
    try:
        server.start()
        # Baseline: one job alone.
        t0 = time.monotonic()
        response = httpx.post(
            f"{server.url}/generate/soundtrack",
            headers=HEADERS,
            json=job_body(-1, args.scene_seconds),
            timeout=120,
        )
        if response.status_code != 200:
            raise RuntimeError(f"baseline job refused: {response.status_code} {response.text[:300]}")
        base_id = response.json()["job_id"]
        while (s := status(server, base_id)) and s["status"] not in ("completed", "failed"):
            time.sleep(0.5)
        baseline = time.monotonic() - t0
        print(f"baseline: one job alone {s['status']} in {baseline:.1f} s", file=sys.stderr)

        threading.Thread(target=sample, args=(marker, peaks, stop), daemon=True).start()
        go = threading.Barrier(args.clients + 1)
        threads = [
            threading.Thread(target=client, args=(server.url, n, args.scene_seconds, go, burst))
            for n in range(args.clients)
        ]
        for t in threads:
            t.start()
        go.wait()
        burst_at = time.monotonic()
        for t in threads:
            t.join()
        print(
            f"burst: {len(burst.accepted)} accepted, {burst.refused} refused in {time.monotonic() - burst_at:.1f} s",
            file=sys.stderr,
        )
        probing = threading.Event()
        prober = threading.Thread(target=probe, args=(server, burst, lat, probing), daemon=True)
        prober.start()

        done: dict[str, tuple[str, float]] = {}
        deadline = began + args.max_seconds
        while len(done) < len(burst.accepted) and time.monotonic() < deadline:
            for job_id in [j for j in burst.accepted if j not in done]:
                s = status(server, job_id)
                if s and s["status"] in ("completed", "failed"):
                    done[job_id] = (s["status"], time.monotonic() - burst_at)
            if not crashed and not args.no_crash and any(v[0] == "completed" for v in done.values()):
                # The worker of a job whose render is under way now (asked, not guessed: a finished
                # job's worker may still be refreshing the catalog): its job must end failed, the
                # others must not notice.
                data_dir = base / "data"
                running = []
                for j in burst.accepted:
                    view = status(server, j) if j not in done else None
                    if view and view.get("status") == "processing" and view.get("progress", 100) <= 60:
                        running.append(j)  # well inside its render, not about to finish
                victims = [
                    p
                    for p in soak_processes(marker)
                    if _is_worker(p) and _alive(p) and _runs(p, running, data_dir)
                ]
                victim_job = _runs(victims[0], running, data_dir) if victims else None
                if victim_job and (status(server, victim_job) or {}).get("status") == "processing":
                    probing.set()  # latencies are those of the burst, not of the restart
                    server.kill()
                    os.kill(victims[0], signal.SIGKILL)
                    crashed = {"at": time.monotonic() - burst_at, "job": victim_job}
                    print(
                        f"crash: server and the worker of job {victim_job} killed at {crashed['at']:.0f} s",
                        file=sys.stderr,
                    )
                    server.start()
            time.sleep(1.0)
        # Nothing stuck: every Dagster run of the soak (renders, catalog refreshes) ends, the killed
        # worker's included, within the reapers' period (the server's every 5 s).
        unfinished = unfinished_runs(home, wait_seconds=60)
        stop.set()
    finally:
        stop.set()
        with contextlib.suppress(NameError):
            probing.set()
        server.stop()
        for pid in soak_processes(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    completed = sorted(t for st, t in done.values() if st == "completed")
    failed = sum(1 for st, _ in done.values() if st == "failed")
    lost = len(burst.accepted) - len(done)
    rows = [
        ("clients", f"{args.clients}"),
        ("run slots / max queued", f"{args.slots} / {args.max_queued}"),
        ("accepted", f"{len(burst.accepted)}"),
        ("refused (503)", f"{burst.refused}  Retry-After {sorted(burst.retry_after) or '-'}"),
        ("client errors", f"{len(burst.errors)}"),
        ("completed", f"{len(completed)}"),
        ("failed", f"{failed}"),
        ("lost (not final)", f"{lost}"),
        ("Dagster runs left unfinished", f"{len(unfinished)} {sorted(set(unfinished)) or ''}"),
        ("baseline: one job alone (s)", f"{baseline:.1f}"),
        ("first burst job done (s)", f"{completed[0]:.1f}" if completed else "-"),
        ("median burst job done (s)", f"{statistics.median(completed):.1f}" if completed else "-"),
        ("last burst job done (s)", f"{completed[-1]:.1f}" if completed else "-"),
        ("first / baseline", f"{completed[0] / baseline:.2f}x" if completed else "-"),
        ("peak run workers", f"{peaks.workers} (limit {args.slots})"),
        ("peak processes", f"{peaks.processes}"),
        ("peak RSS of all (MiB)", f"{peaks.rss / 2**20:.0f}"),
        ("crash (server + 1 run SIGKILL) at (s)", f"{crashed.get('at', '-')!s:.5}"),
        ("killed run's job ended as", done.get(str(crashed.get("job")), ("-",))[0]),
    ]
    for name, values in lat.items():
        rows.append(
            (
                f"GET {name} p50/p95/p99/max (ms), n",
                f"{pct(values, 0.5) * 1e3:.0f} / {pct(values, 0.95) * 1e3:.0f} / {pct(values, 0.99) * 1e3:.0f}"
                f" / {max(values, default=float('nan')) * 1e3:.0f}, {len(values)}",
            )
        )
    width = max(len(n) for n, _ in rows)
    print(f"\nsoak ({time.monotonic() - began:.0f} s, data {base})")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    for err in burst.errors[:5]:
        print(f"  ! {err}")
    return 0 if lost == 0 and not unfinished and peaks.workers <= args.slots else 1


if __name__ == "__main__":
    sys.exit(main())
