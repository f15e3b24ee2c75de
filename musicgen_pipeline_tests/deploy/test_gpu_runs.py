"""GpuTaggingRunCoordinator: a run submitted without the GPU run tags (the UI's asset-graph "Materialize",
i.e. Dagster's hidden __ASSET_JOB) gets them when it executes a `gpu`-pool step, and only then."""

from __future__ import annotations

import json
import sys

import dagster as dg
import pytest
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin

from musicgen_pipeline import gpu_runs

COORDINATOR = {
    "run_coordinator": {
        "module": "musicgen_pipeline.run_coordinator",
        "class": "GpuTaggingRunCoordinator",
        "config": {"dequeue_interval_seconds": 2},
    }
}


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    from musicgen_pipeline.definitions import defs

    return defs


@pytest.fixture
def instance():
    with dg.instance_for_test(overrides=COORDINATOR) as inst:
        yield inst


def submit_asset_job_run(instance: dg.DagsterInstance, defs: dg.Definitions, *keys: str) -> dg.DagsterRun:
    """What the webserver does for "Materialize" of `keys`: an __ASSET_JOB run, then submit_run."""
    selection = {dg.AssetKey(k) for k in keys}
    job = defs.resolve_implicit_job_def_def_for_assets(list(selection))
    assert job is not None and job.name.startswith("__ASSET_JOB")
    assert gpu_runs.GPU_RUN_TAG not in job.run_tags  # the hidden job carries no job tags
    run = instance.create_run_for_job(
        job_def=job,
        asset_selection=selection,
        tags={"dagster/partition": "req-1"},
        **origins(job.name),
        status=dg.DagsterRunStatus.NOT_STARTED,
    )
    return submit(instance, run)


def submit(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dg.DagsterRun:
    return instance.submit_run(run.run_id, workspace=None)  # type: ignore[arg-type]


def origins(job_name: str) -> dict[str, object]:
    """Where the webserver says a run's job comes from: the code server of deploy/workspace.grpc.yaml."""
    location = GrpcServerCodeLocationOrigin(host="127.0.0.1", port=4000, location_name="musicgen_pipeline")
    pointer = ModuleCodePointer("musicgen_pipeline.definitions", "defs", working_directory=None)
    return {
        "remote_job_origin": RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), job_name),
        "job_code_origin": JobPythonOrigin(job_name, RepositoryPythonOrigin(sys.executable, pointer)),
    }


def test_materialize_of_a_gpu_asset_gets_the_gpu_run_tags(instance, defs) -> None:
    run = submit_asset_job_run(instance, defs, "scene_segments")
    assert run.status == dg.DagsterRunStatus.QUEUED
    stored = instance.get_run_by_id(run.run_id)
    assert stored is not None
    assert stored.tags[gpu_runs.GPU_RUN_TAG] == "1"
    assert json.loads(stored.tags[gpu_runs.K8S_CONFIG_TAG]) == gpu_runs.GPU_K8S_CONFIG
    assert stored.tags["dagster/partition"] == "req-1"


def test_materialize_of_cpu_assets_only_gets_no_gpu_tags(instance, defs) -> None:
    run = submit_asset_job_run(instance, defs, "soundtrack_request", "beat_grids")
    stored = instance.get_run_by_id(run.run_id)
    assert stored is not None and stored.status == dg.DagsterRunStatus.QUEUED
    assert gpu_runs.GPU_RUN_TAG not in stored.tags
    assert gpu_runs.K8S_CONFIG_TAG not in stored.tags


def test_tags_already_set_are_kept(instance, defs) -> None:
    job = defs.resolve_implicit_job_def_def_for_assets([dg.AssetKey("scene_segments")])
    custom = json.dumps({"container_config": {"resources": {"limits": {"nvidia.com/gpu": "2"}}}})
    run = instance.create_run_for_job(
        job_def=job,
        asset_selection={dg.AssetKey("scene_segments")},
        tags={gpu_runs.K8S_CONFIG_TAG: custom},
        **origins(job.name),
        status=dg.DagsterRunStatus.NOT_STARTED,
    )
    submit(instance, run)
    stored = instance.get_run_by_id(run.run_id)
    assert stored is not None
    assert stored.tags[gpu_runs.K8S_CONFIG_TAG] == custom
    assert stored.tags[gpu_runs.GPU_RUN_TAG] == "1"


def test_gpu_run_tags_are_valid_dagster_k8s_config() -> None:
    from dagster_k8s.job import get_user_defined_k8s_config

    config = get_user_defined_k8s_config(gpu_runs.GPU_RUN_TAGS)
    assert config.container_config["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert config.pod_spec_config["node_selector"] == gpu_runs.GPU_NODE_SELECTOR
    assert config.pod_spec_config["tolerations"] == gpu_runs.GPU_TOLERATIONS


def test_instance_classes_import_without_the_model_stack() -> None:
    """The webserver/daemon image (Dockerfile target `dagster`) installs the package without its
    dependencies: the classes the instance names must import with Dagster alone."""
    import subprocess

    code = (
        "import sys, musicgen_pipeline.run_coordinator, musicgen_pipeline.run_launcher;"
        "heavy = {'torch', 'numpy', 'librosa', 'transformers', 'soundfile', 'scipy'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip() == "[]"
