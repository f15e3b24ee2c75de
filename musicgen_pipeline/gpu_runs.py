"""What makes a run a GPU run, on every deployment and whichever way it was started (no Dagster import).

Contract:
- `GPU_POOL` ("gpu") is the concurrency pool of every step that loads a model onto the accelerator
  (MusicGen generation, Demucs stems and separation). The instance limits it to the GPU count.
- `GPU_RUN_TAGS` are the *run* tags such a run carries:
  - ``musicgen/gpu: "1"``: counted by the instance's run tag limit
    (``concurrency.runs.tag_concurrency_limits: [{key: musicgen/gpu, limit: <GPU count>}]``), so at most
    that many GPU runs are in progress; the others wait in Dagster's queue, not as pending pods.
  - ``dagster-k8s/config``: with `K8sRunLauncher` the run pod requests and is limited to one
    ``nvidia.com/gpu``, is scheduled on a GPU node (node selector) and tolerates the GPU taint. Other
    launchers ignore it. It must be a run (job) tag: `K8sRunLauncher` builds the run pod from its own
    config, the code location's container context and the run's tags; op tags reach a pod only under
    the per-step `k8s_job_executor`, which this project does not use (models load once per run).
- The jobs that run GPU steps (`render_soundtrack`, `separate_audio`) carry `GPU_RUN_TAGS`, so runs from
  sensors, the schedule, REST, the launchpad and ``render --detach`` have them. Runs the UI starts from
  the asset graph ("Materialize") belong to Dagster's hidden ``__ASSET_JOB`` and carry no job tags:
  `run_coordinator.GpuTaggingRunCoordinator` adds the missing ones (`missing_gpu_tags`) to every
  submitted run whose plan executes a `gpu`-pool step, before the run is queued.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

GPU_POOL = "gpu"
GPU_RUN_TAG = "musicgen/gpu"
K8S_CONFIG_TAG = "dagster-k8s/config"
GPU_RESOURCE = "nvidia.com/gpu"
# The label NVIDIA's GPU feature discovery (GPU operator / device plugin) puts on GPU nodes, and the
# taint managed GPU node pools commonly carry (GKE, EKS, AKS). A cluster using other names adds its own
# through the Helm values (launcher `runK8sConfig`): dicts merge, lists append.
GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}
GPU_TOLERATIONS = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]

GPU_K8S_CONFIG: dict[str, Any] = {
    "container_config": {
        "resources": {"requests": {GPU_RESOURCE: "1"}, "limits": {GPU_RESOURCE: "1"}},
    },
    "pod_spec_config": {"node_selector": GPU_NODE_SELECTOR, "tolerations": GPU_TOLERATIONS},
}
GPU_RUN_TAGS: dict[str, str] = {
    GPU_RUN_TAG: "1",
    K8S_CONFIG_TAG: json.dumps(GPU_K8S_CONFIG, sort_keys=True),
}


def missing_gpu_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The `GPU_RUN_TAGS` a run with these tags lacks (a tag already set is left as it is)."""
    return {key: value for key, value in GPU_RUN_TAGS.items() if key not in tags}
