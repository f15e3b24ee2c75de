"""The run queue: arrival order, never more workers than slots, a bounded line, nothing lost when a
worker or the dispatcher is killed. Workers here are real processes (``sleep``) holding their slot."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from musicgen_pipeline.run_queue import (
    Dispatcher,
    QueuedRun,
    QueueFull,
    RunQueue,
    worker_thread_env,
    worker_threads,
)


class SleepWorkers:
    """A spawn function whose workers are ``sleep N`` processes inheriting their slot's lock."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started: list[str] = []
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, run: QueuedRun, slot_fd: int) -> int:
        proc = subprocess.Popen(["sleep", str(self.seconds)], pass_fds=(slot_fd,), start_new_session=True)
        self.started.append(run.run_id)
        self.procs[run.run_id] = proc
        return proc.pid

    def already_started(self, run: QueuedRun) -> bool:
        return run.run_id in self.procs

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()


@pytest.fixture
def workers() -> Iterator[SleepWorkers]:
    w = SleepWorkers(1.5)
    yield w
    w.kill_all()


def _run(n: int) -> QueuedRun:
    return QueuedRun(run_id=f"run-{n}", key=f"key-{n}", args=["job", f"key-{n}", f"run-{n}"])


def test_runs_start_in_arrival_order_and_never_exceed_the_slots(
    tmp_path: Path, workers: SleepWorkers
) -> None:
    queue = RunQueue(tmp_path / "q", limit=2, max_queued=10)
    positions = [queue.enqueue(_run(n)) for n in range(5)]
    assert positions == [1, 2, 3, 4, 5]
    assert queue.position("run-3") == 4
    dispatcher = Dispatcher(queue, workers.spawn, workers.already_started)
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.serve, args=(stop.is_set,), kwargs={"exit_when_idle": 1.0})
    thread.start()
    peak = 0
    deadline = time.monotonic() + 30
    while thread.is_alive() and time.monotonic() < deadline:
        live = sum(1 for p in workers.procs.values() if p.poll() is None)
        peak = max(peak, live, queue.busy_slots())
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=10)
    assert workers.started == [f"run-{n}" for n in range(5)]
    assert peak == 2
    assert queue.entries() == []


def test_a_full_queue_refuses_with_a_retry_after(tmp_path: Path) -> None:
    queue = RunQueue(tmp_path / "q", limit=1, max_queued=2)
    queue.enqueue(_run(0))
    queue.enqueue(_run(1))
    with pytest.raises(QueueFull) as refused:
        queue.enqueue(_run(2))
    assert refused.value.retry_after >= 30
    assert "queue is full (2 jobs waiting, limit 2)" in str(refused.value)
    queue.enqueue(_run(3), bounded=False)  # render --detach always waits its turn
    removed = queue.remove("run-1")
    assert removed is not None and removed.key == "key-1"
    assert queue.remove("run-1") is None
    assert [r.run_id for r in queue.entries()] == ["run-0", "run-3"]


def test_a_killed_worker_frees_its_slot_and_the_next_run_starts(tmp_path: Path) -> None:
    long = SleepWorkers(300)
    try:
        queue = RunQueue(tmp_path / "q", limit=1)
        dispatcher = Dispatcher(queue, long.spawn, long.already_started)
        queue.enqueue(_run(0))
        queue.enqueue(_run(1))
        assert dispatcher.dispatch_once() == 1
        assert dispatcher.dispatch_once() == 0  # the only slot is held by run-0's worker
        assert queue.busy_slots() == 1 and queue.position("run-1") == 1
        os.kill(long.procs["run-0"].pid, signal.SIGKILL)
        long.procs["run-0"].wait()
        assert queue.busy_slots() == 0  # released by the kernel: no stale state to clean up
        assert dispatcher.dispatch_once() == 1
        assert long.started == ["run-0", "run-1"]
    finally:
        long.kill_all()


def test_a_dispatcher_killed_mid_way_loses_and_duplicates_nothing(
    tmp_path: Path, workers: SleepWorkers
) -> None:
    queue = RunQueue(tmp_path / "q", limit=3)
    for n in range(3):
        queue.enqueue(_run(n))
    # A dispatcher started run-0 and died before taking it out of the line.
    workers.procs["run-0"] = subprocess.Popen(["sleep", "0"])
    assert [r.run_id for r in queue.entries()] == ["run-0", "run-1", "run-2"]
    assert Dispatcher(queue, workers.spawn, workers.already_started).dispatch_once() == 2
    assert workers.started == ["run-1", "run-2"]
    assert queue.entries() == []


def test_only_one_dispatcher_works_at_a_time(tmp_path: Path, workers: SleepWorkers) -> None:
    queue = RunQueue(tmp_path / "q", limit=1)
    first = Dispatcher(queue, workers.spawn, workers.already_started)
    stop = threading.Event()
    thread = threading.Thread(target=first.serve, args=(stop.is_set,))
    thread.start()
    try:
        time.sleep(0.3)
        began = time.monotonic()
        Dispatcher(queue, workers.spawn, workers.already_started).serve(lambda: False)
        assert time.monotonic() - began < 1.0  # returned at once: the first one holds the lock
    finally:
        stop.set()
        thread.join(timeout=10)


def test_render_detach_waits_for_a_run_slot_and_a_detached_dispatcher_starts_it(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg

    from musicgen_pipeline import launch
    from musicgen_pipeline.cli import main
    from musicgen_pipeline.partition_store import PartitionStore
    from musicgen_pipeline_tests.pipeline.conftest import three_scene_request, write_json

    monkeypatch.setenv("MUSICGEN_MODEL", "tiny-random")
    monkeypatch.setenv("RUN_QUEUE", "local")
    monkeypatch.setenv("MKL_NUM_THREADS", "3")  # the operator's own choice is kept
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # unset: the worker gets the cores' share
    home = Path(os.environ["DAGSTER_HOME"])
    yaml = (home / "dagster.yaml").read_text(encoding="utf-8")
    (home / "dagster.yaml").write_text(yaml.replace("max_concurrent_runs: 4", "max_concurrent_runs: 1"))
    store = PartitionStore.for_data_dir(data_dir)
    with dg.DagsterInstance.get() as instance:
        queue = launch.run_queue(instance, store)
        assert queue.limit == 1
        held = queue.take_slot()  # the one run slot is busy
        assert held is not None
        request = write_json(data_dir / "req.json", three_scene_request(seconds=2.0))
        assert main(["render", str(request), "--detach"]) == 0
        run_id = capsys.readouterr().out.split()[1]
        progress = launch.run_progress(instance, store, run_id)
        assert progress is not None and progress.status == "queued" and progress.queue_position == 1
        try:
            deadline = time.monotonic() + 120
            while not _dispatcher_pids(data_dir) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert _dispatcher_pids(data_dir), "render --detach left no dispatcher for its queued run"
            os.close(held)  # the slot frees: the detached dispatcher starts the run
            deadline = time.monotonic() + 120
            while queue.entries() and time.monotonic() < deadline:
                time.sleep(0.5)
            assert queue.entries() == [] and store.pending_run(run_id) is not None
            worker_env = _environ(_worker_pids(store, run_id)[0])
            assert worker_env.get("OMP_NUM_THREADS") == str(worker_threads(1))  # one slot: every core
            assert worker_env.get("MKL_NUM_THREADS") == "3"
            assert launch.cancel(instance, store, queue, run_id, "test over")
        finally:
            for pid in _dispatcher_pids(data_dir) + _worker_pids(store, run_id):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def test_slot_workers_share_the_cores_instead_of_each_taking_all() -> None:
    assert [worker_threads(slots, cpus=16) for slots in (1, 2, 4, 32)] == [16, 8, 4, 1]
    assert worker_thread_env({}, 4)["OMP_NUM_THREADS"] == str(worker_threads(4))
    assert worker_thread_env({"OMP_NUM_THREADS": "5"}, 4)["OMP_NUM_THREADS"] == "5"


def _dispatcher_pids(data_dir: Path) -> list[int]:
    return _launch_pids(data_dir, b"dispatch")


def _launch_pids(data_dir: Path, first_arg: bytes) -> list[int]:
    """PIDs of ``python -m musicgen_pipeline.launch FIRST_ARG ...`` processes of this data folder."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        if b"musicgen_pipeline.launch\0" + first_arg in cmd and f"MUSICGEN_DATA={data_dir}".encode() in env:
            out.append(int(entry.name))
    return out


def _worker_pids(store, run_id: str) -> list[int]:  # type: ignore[no-untyped-def]
    pending = store.pending_run(run_id)
    return [int(pending["pid"])] if pending and pending.get("pid") else []


def test_a_warm_worker_claims_the_oldest_waiting_run_and_drops_stale_entries(tmp_path: Path) -> None:
    queue = RunQueue(tmp_path / "q", limit=1)
    for n in range(3):
        queue.enqueue(_run(n))
    started = {"run-0"}  # run-0's worker started and died before its entry left the line
    order: list[tuple[str, bool]] = []

    def on_claim(run: QueuedRun) -> None:
        order.append((run.run_id, run.path is not None and run.path.exists()))  # still in line
        started.add(run.run_id)

    claimed = queue.claim(lambda r: r.run_id in started, on_claim)
    assert claimed is not None and claimed.run_id == "run-1"
    assert order == [("run-1", True)]  # recorded before its file went: a dispatcher never starts it too
    assert [r.run_id for r in queue.entries()] == ["run-2"]
    assert queue.position("run-2") == 1
    claimed = queue.claim(lambda r: r.run_id in started, on_claim)
    assert claimed is not None and claimed.run_id == "run-2"
    assert queue.claim(lambda r: r.run_id in started, on_claim) is None


@pytest.mark.slow
def test_warm_workers_run_queued_renders_in_one_process_up_to_the_bound(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One run slot, three `render --detach`, RUN_WORKER_MAX_RUNS=2: the first worker renders two
    (its own and the next in line, in the same process), a fresh worker the third; never two at once."""
    import dagster as dg

    from musicgen_pipeline import launch
    from musicgen_pipeline.cli import main
    from musicgen_pipeline.partition_store import PartitionStore
    from musicgen_pipeline.run_health import WORKER_PID_TAG
    from musicgen_pipeline_tests.pipeline.conftest import three_scene_request, write_json

    monkeypatch.setenv("MUSICGEN_MODEL", "tiny-random")
    monkeypatch.setenv("RUN_QUEUE", "local")
    monkeypatch.setenv("DEMUCS_MODEL", "tiny-random")
    monkeypatch.setenv("RUN_WORKER_MAX_RUNS", "2")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # one worker process at a time on a shared machine
    home = Path(os.environ["DAGSTER_HOME"])
    yaml = (home / "dagster.yaml").read_text(encoding="utf-8")
    (home / "dagster.yaml").write_text(yaml.replace("max_concurrent_runs: 4", "max_concurrent_runs: 1"))
    store = PartitionStore.for_data_dir(data_dir)
    run_ids = []
    with dg.DagsterInstance.get() as instance:
        queue = launch.run_queue(instance, store)
        held = queue.take_slot()  # hold the slot until all three wait, so the order is known
        assert held is not None
        try:
            for seed in (1, 2, 3):
                request = write_json(data_dir / f"req{seed}.json", three_scene_request(1.0, seed=seed))
                assert main(["render", str(request), "--detach"]) == 0
                run_ids.append(capsys.readouterr().out.split()[1])
            os.close(held)
            held = None
            peak = 0
            watcher = launch.RunWatcher(instance, store)
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                peak = max(peak, len(_live_workers(data_dir)))
                states = [p.status if (p := watcher.progress(r)) else None for r in run_ids]
                if all(s in launch.FINAL_STATUSES for s in states):
                    break
                time.sleep(0.5)
            assert states == ["succeeded"] * 3, states
            assert peak == 1
            pids = [instance.get_run_by_id(r).tags[WORKER_PID_TAG] for r in run_ids]
            assert pids[0] == pids[1] != pids[2]
            warm = [bool(store.pending_run(r).get("warm")) for r in run_ids]
            assert warm == [False, True, False]
            for r in run_ids:  # each run logs to its own file, also when a warm worker ran it
                log = store.files(store.pending_run(r)["partition"]).run_log(r).read_text(encoding="utf-8")
                assert f"{r} - scene_segments - generating scene(s)" in log
                assert not any(other in log for other in run_ids if other != r)
        finally:
            if held is not None:
                os.close(held)
            for pid in _dispatcher_pids(data_dir) + _live_workers(data_dir):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _live_workers(data_dir: Path) -> list[int]:
    return _launch_pids(data_dir, b"render_soundtrack")
