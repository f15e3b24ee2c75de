"""Every shipped Dagster instance file validates against Dagster 1.13.27's own config schema, and the
Compose file passes `docker-compose config`.

An instance file is checked the way Dagster loads it (`dagster_instance_config`: the schema of
dagster.yaml, env sources allowed), and each configurable class it names (run coordinator, run launcher)
is imported and its config processed by that class's own schema, without connecting anywhere. The Helm
chart's instance ConfigMap is rendered by the chart, which is not installable here: the blocks our
values set are restated in Dagster's keys (the chart's templates/helpers/instance/*.tpl name them one
to one) and checked the same way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._config import process_config
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes.config_class import class_from_code_pointer

from musicgen_pipeline import gpu_runs, run_coordinator

ROOT = Path(__file__).resolve().parents[2]
# The local instance file (the repository root's, or the package's own copy), then the deployments'.
INSTANCE_FILES = [
    *[p for p in (ROOT / "dagster.yaml", ROOT / "musicgen_pipeline" / "dagster.yaml") if p.exists()],
    ROOT / "deploy" / "dagster.prod.yaml",
    ROOT / "deploy" / "compose" / "dagster.yaml",
]
COMPOSE = ROOT / "deploy" / "compose" / "docker-compose.yml"


def validate_instance(config: dict[str, Any], folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dagster.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    validated, _ = dagster_instance_config(str(folder))
    for key in ("run_coordinator", "run_launcher"):
        if key in validated:
            entry = validated[key]
            klass = class_from_code_pointer(entry["module"], entry["class"])
            result = process_config(klass.config_type(), entry.get("config") or {})
            if not result.success:
                raise DagsterInvalidConfigError(f"{key} {entry['class']}", result.errors, entry)
    return validated


@pytest.mark.parametrize("path", INSTANCE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_instance_file_validates(path: Path, tmp_path: Path) -> None:
    validated = validate_instance(yaml.safe_load(path.read_text(encoding="utf-8")), tmp_path / "home")
    assert validated["run_monitoring"]["enabled"] is True
    assert validated["concurrency"]["pools"]["default_limit"] >= 1


@pytest.mark.parametrize("path", INSTANCE_FILES[-2:], ids=lambda p: str(p.relative_to(ROOT)))
def test_production_instance_files_use_postgres_queue_and_gpu_tag_limit(path: Path) -> None:
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    db = config["storage"]["postgres"]["postgres_db"]
    assert db["scheme"] == "postgresql+psycopg2"
    assert {db[k]["env"] for k in ("hostname", "port", "username", "password", "db_name")} == {
        "DAGSTER_PG_HOST",
        "DAGSTER_PG_PORT",
        "DAGSTER_PG_USER",
        "DAGSTER_PG_PASSWORD",
        "DAGSTER_PG_DB",
    }
    assert config["run_coordinator"]["class"] == "GpuTaggingRunCoordinator"
    limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert [(lim["key"], lim["limit"]) for lim in limits] == [
        (gpu_runs.GPU_RUN_TAG, config["concurrency"]["pools"]["default_limit"])
    ]
    monitoring = config["run_monitoring"]
    assert monitoring["free_slots_after_run_end_seconds"] > 0


def test_validation_rejects_a_misspelt_key(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "deploy" / "dagster.prod.yaml").read_text(encoding="utf-8"))
    db = config["storage"]["postgres"]["postgres_db"]
    db["sheme"] = db.pop("scheme")
    with pytest.raises(DagsterInvalidConfigError, match="sheme"):
        validate_instance(config, tmp_path / "home")
    config = yaml.safe_load((ROOT / "deploy" / "compose" / "dagster.yaml").read_text(encoding="utf-8"))
    config["run_launcher"]["config"]["netwrok"] = "x"
    with pytest.raises(DagsterInvalidConfigError, match="netwrok"):
        validate_instance(config, tmp_path / "home2")


def helm_instance(values: dict[str, Any]) -> dict[str, Any]:
    """The instance blocks the chart renders from the values this project sets, in Dagster's keys."""
    pg = values["postgresql"]
    daemon = values["dagsterDaemon"]
    custom = daemon["runCoordinator"]["config"]["customRunCoordinator"]
    monitoring = daemon["runMonitoring"]
    concurrency = values["concurrency"]
    return {
        "storage": {
            "postgres": {
                "postgres_db": {
                    "username": pg["postgresqlUsername"],
                    "password": {"env": "DAGSTER_PG_PASSWORD"},
                    "hostname": pg["postgresqlHost"],
                    "db_name": pg["postgresqlDatabase"],
                    "port": pg["service"]["port"],
                    "scheme": pg["postgresqlScheme"],
                }
            }
        },
        "run_coordinator": {"module": custom["module"], "class": custom["class"], "config": custom["config"]},
        "run_launcher": {
            "module": "dagster_k8s",
            "class": "K8sRunLauncher",
            "config": {
                "load_incluster_config": True,
                "job_namespace": "musicgen",
                "image_pull_policy": values["runLauncher"]["config"]["k8sRunLauncher"]["imagePullPolicy"],
                "service_account_name": "musicgen-dagster",
                "dagster_home": "/opt/dagster/dagster_home",
                "instance_config_map": "musicgen-dagster-instance",
                "postgres_password_secret": values["global"]["postgresqlSecretName"],
                "run_k8s_config": {"job_spec_config": {"backoffLimit": 0, "ttlSecondsAfterFinished": 86400}},
            },
        },
        "run_monitoring": {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
            "max_resume_run_attempts": monitoring["maxResumeRunAttempts"],
            "free_slots_after_run_end_seconds": monitoring["freeSlotsAfterRunEndSeconds"],
        },
        "concurrency": {
            "pools": {
                "default_limit": concurrency["pools"]["defaultLimit"],
                "granularity": concurrency["pools"]["granularity"],
            },
            "runs": {
                "max_concurrent_runs": concurrency["runs"]["maxConcurrentRuns"],
                "tag_concurrency_limits": concurrency["runs"]["tagConcurrencyLimits"],
            },
        },
    }


def test_helm_values_instance_blocks_validate(tmp_path: Path) -> None:
    values = yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text(encoding="utf-8"))
    validated = validate_instance(helm_instance(values), tmp_path / "home")
    assert validated["run_launcher"]["class"] == "K8sRunLauncher"


def test_gpu_tagging_coordinator_loads_from_the_prod_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    config = yaml.safe_load((ROOT / "deploy" / "dagster.prod.yaml").read_text(encoding="utf-8"))
    config.pop("storage")  # SQLite here; the live topology test runs the Postgres block
    (home / "dagster.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_coordinator, run_coordinator.GpuTaggingRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None
        assert queue.max_concurrent_runs == 4
        assert [(lim["key"], lim["limit"]) for lim in queue.tag_concurrency_limits] == [("musicgen/gpu", 1)]


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose not installed (make docker-compose)"
)
def test_compose_file_passes_docker_compose_config(tmp_path: Path) -> None:
    env = dict(os.environ, POSTGRES_PASSWORD="test-password")
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    services = rendered["services"]
    assert set(services) == {
        "musicgen_postgresql",
        "musicgen_code_server",
        "musicgen_webserver",
        "musicgen_daemon",
    }
    code = services["musicgen_code_server"]
    assert code["image"] == "musicgen-pipeline"
    assert code["environment"]["DAGSTER_CURRENT_IMAGE"] == "musicgen-pipeline"
    assert "musicgen_pipeline.definitions" in code["command"]
    for name in ("musicgen_webserver", "musicgen_daemon"):
        assert services[name]["image"] == "musicgen-pipeline-dagster"  # no model stack
    assert services["musicgen_daemon"]["entrypoint"][:2] == ["dagster-daemon", "run"]
    # Without the password the file refuses to render rather than start with an empty one.
    env.pop("POSTGRES_PASSWORD")
    refused = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config"], capture_output=True, text=True, env=env, timeout=120
    )
    assert refused.returncode != 0
    assert "POSTGRES_PASSWORD" in refused.stderr
