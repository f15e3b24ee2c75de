"""`GpuTaggingRunCoordinator`: Dagster's queued run coordinator, plus the GPU run tags for runs that lack them.

Configure it in the instance of every deployment (``deploy/dagster.prod.yaml``, the Compose instance, the
Helm values' ``CustomRunCoordinator``); its config is `QueuedRunCoordinator`'s::

    run_coordinator:
      module: musicgen_pipeline.run_coordinator
      class: GpuTaggingRunCoordinator

A submitted run whose execution plan executes a step of the `gpu` pool gets the `gpu_runs.GPU_RUN_TAGS`
it lacks (a tag already set is kept) before it is queued, so the run tag limit counts it and
`K8sRunLauncher` gives its pod a GPU. The runs this is for: the UI's asset-graph "Materialize", which
launches Dagster's hidden ``__ASSET_JOB`` (no job tags); runs of the GPU jobs already carry the tags.

Importable with Dagster alone (the webserver and the daemon load it; their image has no model stack).
"""

from __future__ import annotations

import dagster as dg

from musicgen_pipeline.gpu_runs import GPU_POOL, missing_gpu_tags


def runs_gpu_steps(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """True when the run's execution plan executes at least one step of the `gpu` pool."""
    if not run.execution_plan_snapshot_id:
        return False
    plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    selected = set(run.step_keys_to_execute) if run.step_keys_to_execute else None
    return any(step.pool == GPU_POOL and (selected is None or step.key in selected) for step in plan.steps)


class GpuTaggingRunCoordinator(dg.QueuedRunCoordinator):
    """The queued run coordinator, plus: a submitted run that executes `gpu`-pool steps gets the
    GPU run tags it lacks before it is queued. Same config as `QueuedRunCoordinator`."""

    def submit_run(self, context: dg.SubmitRunContext) -> dg.DagsterRun:
        run = context.dagster_run
        missing = missing_gpu_tags(run.tags)
        if missing and runs_gpu_steps(self._instance, run):
            self._instance.add_run_tags(run.run_id, missing)
            reloaded = self._instance.get_run_by_id(run.run_id)
            if reloaded is not None:
                context = dg.SubmitRunContext(reloaded, context.workspace)
        return super().submit_run(context)
