"""`LocalRunLauncher`: Dagster's default run launcher plus a worker health check and local termination.

Configure it in ``dagster.yaml`` for every topology that runs workers as local processes
(``dagster dev``, the single-host deployment with ``dagster-daemon``)::

    run_launcher:
      module: musicgen_pipeline.run_launcher
      class: LocalRunLauncher
    run_monitoring:
      enabled: true
      poll_interval_seconds: 10
      free_slots_after_run_end_seconds: 5

- **Health check** (`supports_check_run_worker_health`): the daemon's run monitoring asks it about
  every STARTED run; a run whose worker process died (`run_health.is_alive`) is reported FAILED, so
  monitoring marks the run failed and ``free_slots_after_run_end_seconds`` frees its pool slots. The
  default launcher has no such check, so a killed worker left its run STARTED and the ``gpu`` slot
  taken for ever.
- **Terminate**: runs launched through a code server are cancelled through it (Dagster's way);
  runs started by this project's own workers (REST, ``render``) have no code server to ask, and
  the default launcher answered "Unable to terminate run", leaving them CANCELING. Those are
  terminated by signalling their local worker (`run_health.terminate`).

Importable without the pipeline's heavy dependencies (the daemon and webserver load it).
"""

from __future__ import annotations

from typing import Any

from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher
from dagster._core.storage.tags import GRPC_INFO_TAG

from musicgen_pipeline import run_health


class LocalRunLauncher(DefaultRunLauncher):
    """`DefaultRunLauncher` that knows whether a run's worker process is alive."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: Any) -> CheckRunHealthResult:
        worker = run_health.worker_of(self._instance, run)
        if worker is None:  # not started yet (monitoring's start timeout covers that)
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no worker recorded yet")
        alive = run_health.is_alive(worker)
        if alive is False:
            return CheckRunHealthResult(
                WorkerStatus.FAILED, f"the run's worker process ({worker.describe()}) is gone"
            )
        if alive is None:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, f"worker {worker.describe()} is not local")
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"worker {worker.describe()} is alive")

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id) if self.has_instance else None
        if run is None or run.is_finished:
            return False
        if GRPC_INFO_TAG in run.tags and super().terminate(run_id):
            return True
        return run_health.terminate(self._instance, run_id, "terminated from the Dagster UI or API")
