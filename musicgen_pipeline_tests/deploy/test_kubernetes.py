"""The Kubernetes run pods of deploy/helm/values.yaml, built offline by dagster-k8s's own launcher.

No cluster here: `K8sRunLauncher.launch_run` (dagster-k8s 0.29.27) runs unchanged against a fake batch
API that records the Job it would create. Its inputs are the ones a cluster gives it: the launcher config
the chart renders from `runLauncher.config.k8sRunLauncher`, the code location's container context the
chart's user-code deployment passes to `dagster api grpc` (`includeConfigInLaunchedRuns`), and the run's
tags as the daemon/webserver create them (the job's tags merged with the request's). The Dagster chart
itself is not installable here (no registry serves it), so `helm template` is not run: the two chart
mappings are restated below from the chart's templates (charts/dagster-user-deployments/templates/
helpers/_helpers.tpl `dagsterUserDeployments.k8sContainerContext`; templates/helpers/instance/
_run-launcher.tpl), and the resulting manifests are validated against the Kubernetes schema
(kubernetes-validate, strict) offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import kubernetes
import kubernetes_validate
import pytest
import yaml
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.launcher import LaunchRunContext
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster_k8s import K8sRunLauncher

from musicgen_pipeline import gpu_runs

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "deploy" / "helm" / "values.yaml"
RELEASE, NAMESPACE = "musicgen", "musicgen"
FULLNAME = f"{RELEASE}-dagster"
K8S_VERSION = "1.30.0"


def values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text(encoding="utf-8"))


def deployment(vals: dict[str, Any]) -> dict[str, Any]:
    (dep,) = vals["dagster-user-deployments"]["deployments"]
    return dep


def chart_container_context(vals: dict[str, Any]) -> dict[str, Any]:
    """What the user-code chart sets as the code server's container context (--container-context)."""
    dep = deployment(vals)
    k8s: dict[str, Any] = {
        "image_pull_policy": dep["image"]["pullPolicy"],
        "env_config_maps": [f"{FULLNAME}-{dep['name']}-user-env"]
        + [c["name"] for c in dep.get("envConfigMaps", []) if "name" in c],
        "namespace": NAMESPACE,
        "service_account_name": f"{FULLNAME}-user-deployments",
    }
    secrets = [s["name"] for s in dep.get("envSecrets", []) if "name" in s]
    if secrets:
        k8s["env_secrets"] = secrets
    for key, out in (
        ("volumeMounts", "volume_mounts"),
        ("volumes", "volumes"),
        ("labels", "labels"),
        ("resources", "resources"),
    ):
        if dep.get(key):
            k8s[out] = dep[key]
    if isinstance(dep.get("env"), list):
        k8s["env"] = dep["env"]
    return {"k8s": k8s}


def launcher_config(vals: dict[str, Any], kubeconfig: Path) -> dict[str, Any]:
    """The K8sRunLauncher config block the chart writes into the instance ConfigMap."""
    cfg = vals["runLauncher"]["config"]["k8sRunLauncher"]
    run_k8s = cfg.get("runK8sConfig", {})
    snake = {
        "containerConfig": "container_config",
        "podTemplateSpecMetadata": "pod_template_spec_metadata",
        "podSpecConfig": "pod_spec_config",
        "jobConfig": "job_config",
        "jobMetadata": "job_metadata",
        "jobSpecConfig": "job_spec_config",
    }
    return {
        # Outside a cluster: a kubeconfig that is parsed, never contacted.
        "load_incluster_config": False,
        "kubeconfig_file": str(kubeconfig),
        "job_namespace": NAMESPACE,
        "image_pull_policy": cfg["imagePullPolicy"],
        "service_account_name": FULLNAME,
        "dagster_home": "/opt/dagster/dagster_home",
        "instance_config_map": f"{FULLNAME}-instance",
        "postgres_password_secret": vals["global"]["postgresqlSecretName"],
        "env_config_maps": [c["name"] for c in cfg.get("envConfigMaps", []) if "name" in c],
        "env_secrets": [s["name"] for s in cfg.get("envSecrets", []) if "name" in s],
        "run_k8s_config": {snake[k]: v for k, v in run_k8s.items()},
    }


class RecordingBatchApi:
    """Stands in for kubernetes.client.BatchV1Api: keeps the Jobs instead of creating them."""

    def __init__(self) -> None:
        self.jobs: list[Any] = []

    def create_namespaced_job(self, body: Any, namespace: str, **_: Any) -> Any:
        self.jobs.append((namespace, body))
        return body


KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "offline", "cluster": {"server": "https://127.0.0.1:1"}}],
    "users": [{"name": "offline", "user": {"token": "unused"}}],
    "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "offline"}}],
    "current-context": "offline",
}


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    from musicgen_pipeline.definitions import defs

    return defs


@pytest.fixture
def launch(tmp_path: Path):
    """launch(job_name, tags, asset_selection=None) -> the Job manifest dagster-k8s would create."""
    vals = values()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(KUBECONFIG), encoding="utf-8")
    batch = RecordingBatchApi()
    image = f"{deployment(vals)['image']['repository']}:{deployment(vals)['image']['tag']}"
    origin = RepositoryPythonOrigin(
        executable_path="/usr/local/bin/python",
        code_pointer=ModuleCodePointer("musicgen_pipeline.definitions", "defs", working_directory="/app"),
        container_image=image,
        container_context=chart_container_context(vals),
    )
    with dg.instance_for_test() as instance:
        launcher = K8sRunLauncher(**launcher_config(vals, kubeconfig), k8s_client_batch_api=batch)
        launcher.register_instance(instance)

        def _launch(job: dg.JobDefinition, tags: dict[str, str]) -> dict[str, Any]:
            run = instance.create_run_for_job(
                job_def=job,
                tags={**job.run_tags, **tags},
                job_code_origin=JobPythonOrigin(job.name, origin),
            )
            launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
            namespace, body = batch.jobs[-1]
            assert namespace == NAMESPACE
            return kubernetes.client.ApiClient().sanitize_for_serialization(body)

        yield _launch


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    return manifest["spec"]["template"]["spec"]


def validate(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_render_run_pod_requests_one_gpu_on_a_gpu_node(defs, launch) -> None:
    job = defs.resolve_job_def("render_soundtrack")
    # The inbox sensor's request tags (sensors.py): the job's tags are merged under them.
    manifest = launch(job, {"musicgen/request_hash": "0123456789abcdef", "dagster/partition": "req-1"})
    validate(manifest)
    spec = pod_spec(manifest)
    (container,) = spec["containers"]
    resources = container["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == "1"
    assert resources["limits"]["nvidia.com/gpu"] == "1"
    # The code server's own requests are inherited (includeConfigInLaunchedRuns), the GPU added to them.
    assert resources["requests"]["memory"] == "4Gi"
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    # Shared data volume and read-only model cache, the image of the code location.
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["musicgen-data"]["mountPath"] == "/data"
    assert mounts["musicgen-models"].get("readOnly") is True
    assert container["image"] == "registry.example.com/musicgen-pipeline:0.1.0"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MUSICGEN_DATA"] == "/data"
    assert manifest["spec"]["backoffLimit"] == 0
    assert manifest["spec"]["ttlSecondsAfterFinished"] == 86400


def test_separation_run_pod_requests_one_gpu(defs, launch) -> None:
    manifest = launch(defs.resolve_job_def("separate_audio"), {"dagster/partition": "sep-1"})
    validate(manifest)
    spec = pod_spec(manifest)
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


def test_catalog_run_pod_requests_no_gpu(defs, launch) -> None:
    manifest = launch(defs.resolve_job_def("refresh_catalog"), {})
    validate(manifest)
    spec = pod_spec(manifest)
    resources = spec["containers"][0]["resources"]
    assert "nvidia.com/gpu" not in resources.get("requests", {})
    assert "nvidia.com/gpu" not in resources.get("limits", {})
    assert not spec.get("nodeSelector")
    assert not spec.get("tolerations")


def test_gpu_jobs_carry_the_tag_the_run_limit_counts(defs) -> None:
    vals = values()
    (limit,) = vals["concurrency"]["runs"]["tagConcurrencyLimits"]
    assert limit["key"] == gpu_runs.GPU_RUN_TAG
    # One GPU run per GPU, one GPU step per GPU: the same count.
    assert limit["limit"] == vals["concurrency"]["pools"]["defaultLimit"]
    for name in ("render_soundtrack", "separate_audio"):
        tags = defs.resolve_job_def(name).run_tags
        assert tags[gpu_runs.GPU_RUN_TAG] == "1", name
        assert json.loads(tags[gpu_runs.K8S_CONFIG_TAG]) == gpu_runs.GPU_K8S_CONFIG, name
    assert gpu_runs.GPU_RUN_TAG not in defs.resolve_job_def("refresh_catalog").run_tags


def test_code_server_pod_holds_no_gpu() -> None:
    dep = deployment(values())
    text = json.dumps(dep)
    assert "nvidia.com/gpu" not in text
    assert not dep.get("nodeSelector") and not dep.get("tolerations")


def test_values_choose_the_documented_production_settings() -> None:
    vals = values()
    assert vals["postgresql"]["enabled"] is False
    assert vals["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    assert vals["runLauncher"]["type"] == "K8sRunLauncher"
    coordinator = vals["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "CustomRunCoordinator"
    custom = coordinator["config"]["customRunCoordinator"]
    assert (custom["module"], custom["class"]) == (
        "musicgen_pipeline.run_coordinator",
        "GpuTaggingRunCoordinator",
    )
    # Dagster refuses max_concurrent_runs in the coordinator together with concurrency.runs.
    assert "max_concurrent_runs" not in custom["config"]
    monitoring = vals["dagsterDaemon"]["runMonitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["startTimeoutSeconds"] >= 600  # GPU node scale-up + image pull
    assert monitoring["freeSlotsAfterRunEndSeconds"] > 0
    dep = deployment(vals)
    assert dep["includeConfigInLaunchedRuns"]["enabled"] is True
    assert dep["dagsterApiGrpcArgs"] == ["-m", "musicgen_pipeline.definitions", "-a", "defs"]
