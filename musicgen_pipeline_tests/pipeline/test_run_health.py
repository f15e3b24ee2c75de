"""A run's worker: killed => run failed and pool slot freed; signalled or terminated => run ends, even
while it waits for a pool slot; waiting => no CPU spent. Each worker here is a real process executing
a one-op job in the ``gpu`` pool (the same executor and pool code path as the pipeline's runs)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from musicgen_pipeline import pool_wait, run_health
from musicgen_pipeline.run_launcher import LocalRunLauncher

GPU = "gpu"
WORKER = """
import sys, time
import dagster as dg
from musicgen_pipeline import pool_wait, run_health

run_id, fix, tags = sys.argv[1:4]
if fix == "fix":
    pool_wait.install()

@dg.op(pool="gpu")
def hold_gpu():
    time.sleep(300)

@dg.job
def gpu_job():
    hold_gpu()

with dg.DagsterInstance.get() as instance:
    gpu_job.execute_in_process(
        instance=instance, run_id=run_id, raise_on_error=False,
        tags=run_health.worker_tags() if tags == "tags" else {},
    )
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait(predicate, timeout: float, what: str, interval: float = 0.25):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


class Workers:
    def __init__(self, tmp_path: Path) -> None:
        self.script = tmp_path / "gpu_worker.py"
        self.script.write_text(WORKER, encoding="utf-8")
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, run_id: str, *, fix: bool = True, tags: bool = False) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, str(self.script), run_id, "fix" if fix else "nofix", "tags" if tags else "-"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    w = Workers(tmp_path)
    yield w
    w.stop_all()


def _holder(instance: dg.DagsterInstance) -> str | None:
    slots = instance.event_log_storage.get_concurrency_info(GPU).claimed_slots
    return slots[0].run_id if slots else None


def _status(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRunStatus | None:
    run = instance.get_run_by_id(run_id)
    return run.status if run else None


def test_installed_pool_wait_sleeps_until_the_next_claim_check() -> None:
    from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

    pool_wait.install()
    assert not pool_wait.interval_has_busy_poll_defect(InstanceConcurrencyContext)
    probe = InstanceConcurrencyContext.__new__(InstanceConcurrencyContext)
    probe._pending_claims = {"a"}
    probe._pending_timeouts = {"a": time.time() + 5.0}
    assert 4.0 < probe.interval_to_next_pending_claim_check() <= 5.0
    probe._pending_timeouts = {"a": time.time() - 5.0}
    assert probe.interval_to_next_pending_claim_check() == 0.0


def test_alive_means_same_pid_same_process_same_host() -> None:
    me = run_health.Worker(pid=os.getpid(), host=None, started=run_health.process_start_time(os.getpid()))
    assert run_health.is_alive(me) is True
    assert (
        run_health.is_alive(run_health.Worker(pid=os.getpid(), host=None, started=time.time() - 9e5)) is False
    )
    assert (
        run_health.is_alive(run_health.Worker(pid=os.getpid(), host=None, seen_at=time.time() - 9e5)) is False
    )
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert run_health.is_alive(run_health.Worker(pid=gone.pid, host=None)) is False
    assert run_health.is_alive(run_health.Worker(pid=1, host="another-host.example")) is None


@pytest.mark.parametrize("tagged", [False, True], ids=["dagster-pid-event", "worker-tags"])
def test_killed_worker_holding_the_gpu_slot_is_failed_and_the_slot_freed(
    instance: dg.DagsterInstance, workers: Workers, tagged: bool
) -> None:
    dead_id, next_id = "a0000000-0000-4000-8000-000000000001", "a0000000-0000-4000-8000-000000000002"
    proc = workers.start(dead_id, tags=tagged)
    _wait(lambda: _holder(instance) == dead_id, 120, "the first worker to take the gpu slot")
    waiting = workers.start(next_id)
    _wait(lambda: instance.event_log_storage.get_concurrency_info(GPU).pending_step_count, 120, "a waiter")
    proc.kill()
    proc.wait()
    assert run_health.reap(instance) == [dead_id]
    assert _status(instance, dead_id) == dg.DagsterRunStatus.FAILURE
    failure = instance.get_records_for_run(dead_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    assert f"worker process (pid {proc.pid}" in failure[-1].event_log_entry.dagster_event.message
    # The waiting run gets the slot (Dagster's back-off is at most a few seconds here).
    _wait(lambda: _holder(instance) == next_id, 60, "the waiting run to take the freed slot")
    assert run_health.reap(instance) == []  # the live waiter is left alone
    assert waiting.poll() is None


def test_a_run_waiting_for_the_pool_spends_no_cpu_and_sigterm_ends_it(
    instance: dg.DagsterInstance, workers: Workers
) -> None:
    instance.event_log_storage.set_concurrency_slots(GPU, 1)
    assert instance.event_log_storage.claim_concurrency_slot(GPU, "holder-run", "hold_gpu").is_claimed
    run_id = "b0000000-0000-4000-8000-000000000001"
    proc = workers.start(run_id)
    _wait(lambda: instance.event_log_storage.get_concurrency_info(GPU).pending_step_count, 120, "the wait")
    time.sleep(1.0)
    before, start = _cpu_seconds(proc.pid), time.monotonic()
    time.sleep(6.0)
    spent = _cpu_seconds(proc.pid) - before
    # Dagster 1.13.27 unpatched: the waiting loop spins (about 1 CPU-second per second when a core is free).
    assert spent < 0.1 * (time.monotonic() - start), f"waiting run used {spent:.2f} CPU-s"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)  # unpatched: still waiting after minutes
    assert _status(instance, run_id) == dg.DagsterRunStatus.FAILURE
    assert instance.event_log_storage.get_concurrency_info(GPU).pending_step_count == 0
    run_health.free_slots(instance, "holder-run")


def test_terminate_reaches_the_worker_and_the_launcher_reports_health(
    instance: dg.DagsterInstance, workers: Workers
) -> None:
    launcher = LocalRunLauncher()
    launcher.register_instance(instance)
    run_id = "c0000000-0000-4000-8000-000000000001"
    proc = workers.start(run_id, tags=True)
    _wait(lambda: _holder(instance) == run_id, 120, "the worker to take the gpu slot")
    run = instance.get_run_by_id(run_id)
    assert launcher.check_run_worker_health(run).status.value == "RUNNING"
    assert launcher.terminate(run_id)  # the default launcher: "Unable to terminate", run left CANCELING
    proc.wait(timeout=30)
    assert _status(instance, run_id) == dg.DagsterRunStatus.CANCELED
    assert _holder(instance) is None
    assert launcher.check_run_worker_health(instance.get_run_by_id(run_id)).status.value == "FAILED"


def test_the_shipped_instance_monitors_local_run_workers(tmp_path: Path) -> None:
    from musicgen_pipeline.instance import instance_yaml

    (tmp_path / "dagster.yaml").write_text(instance_yaml(), encoding="utf-8")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.run_launcher, LocalRunLauncher)
        assert instance.run_launcher.supports_check_run_worker_health
        assert instance.run_monitoring_enabled
        settings = instance.run_monitoring_settings
        assert settings["poll_interval_seconds"] <= 10 and settings["free_slots_after_run_end_seconds"] <= 5


def test_a_run_whose_worker_died_before_starting_it_is_failed(instance: dg.DagsterInstance) -> None:
    """A worker killed between creating its run and RUN_START left it NOT_STARTED for ever; a run
    without worker tags (one waiting for a launcher) is left alone."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    tags = {
        run_health.WORKER_HOST_TAG: socket.gethostname(),
        run_health.WORKER_PID_TAG: str(gone.pid),
        run_health.WORKER_STARTED_TAG: f"{time.time() - 5:.2f}",
    }
    orphan = instance.create_run_for_job(_noop_job, run_id="b0000000-0000-4000-8000-000000000001", tags=tags)
    untagged = instance.create_run_for_job(_noop_job, run_id="b0000000-0000-4000-8000-000000000002")
    assert orphan.status == untagged.status == dg.DagsterRunStatus.NOT_STARTED
    assert run_health.reap(instance) == [orphan.run_id]
    assert _status(instance, orphan.run_id) == dg.DagsterRunStatus.FAILURE
    assert _status(instance, untagged.run_id) == dg.DagsterRunStatus.NOT_STARTED


@dg.op
def _noop() -> None:
    pass


@dg.job
def _noop_job() -> None:
    _noop()
