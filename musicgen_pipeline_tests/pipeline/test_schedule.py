from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import yaml

from musicgen_pipeline.bulk_plan import parse_keys
from musicgen_pipeline.catalogue import read_catalogue
from musicgen_pipeline.definitions import defs
from musicgen_pipeline.naming import BULK_KEYS_TAG, PARTITIONS_NAME
from musicgen_pipeline.resources import SettingsResource
from musicgen_pipeline_tests.pipeline.conftest import three_scene_request

RESOURCES = {"settings": SettingsResource()}  # what the daemon binds from the code location


def _catalogue_csv(path: Path) -> None:
    request_json = json.dumps(three_scene_request(seed=11)).replace('"', '""')
    path.write_text(
        "name,base_prompt,moods,durations,seed,model,crossfade_duration,request\n"
        "opening,calm piano,dawn|noon,4|5,1,tiny-random,0.5,\n"
        "single,lofi beat,,,2,tiny-random,,\n"
        f'json-row,,,,,,,"{request_json}"\n'
        "bad,epic drums,a|b,3,3,tiny-random,,\n",
        encoding="utf-8",
    )


def test_catalogue_rows_parse(data_dir: Path) -> None:
    path = data_dir / "catalog.csv"
    _catalogue_csv(path)
    rows = read_catalogue(path)
    assert [r.row for r in rows] == [2, 3, 4, 5]
    assert [s.duration for s in rows[0].request.scenes] == [4.0, 5.0]
    assert rows[0].request.scene_prompts() == ["dawn, calm piano", "noon, calm piano"]
    assert len(rows[1].request.scenes) == 1
    assert rows[2].request.seed == 11 and len(rows[2].request.scenes) == 3
    assert rows[3].request is None and "moods has 2 entries but durations has 1" in rows[3].error


def test_schedule_requests_only_unrendered_rows(instance: dg.DagsterInstance, data_dir: Path) -> None:
    _catalogue_csv(data_dir / "catalog.csv")
    rows = read_catalogue(data_dir / "catalog.csv")
    keys = [r.request.partition_key() for r in rows if r.request]
    # Row 2 ("single") is rendered already.
    done = data_dir / "outputs" / keys[1]
    done.mkdir(parents=True)
    (done / "summary.json").write_text("{}", encoding="utf-8")

    schedule = defs.resolve_schedule_def("catalogue_schedule")
    context = dg.build_schedule_context(
        instance=instance, repository_def=defs.get_repository_def(), resources=RESOURCES
    )
    result = schedule.evaluate_tick(context)
    # one model: one bulk run over both unrendered rows, a contiguous range of their new partitions
    (bulk,) = result.run_requests
    assert parse_keys(bulk.tags[BULK_KEYS_TAG]) == [keys[0], keys[2]]
    assert bulk.partition_key is None and bulk.run_key.startswith(f"bulk:{keys[0]}..{keys[2]}@")
    assert bulk.tags["musicgen/source"] == "catalog.csv: rows 2, 4"
    assert instance.get_dynamic_partitions(PARTITIONS_NAME) == [keys[0], keys[2]]
    assert set(instance.get_dynamic_partitions(PARTITIONS_NAME)) == {keys[0], keys[2]}
    assert (data_dir / "outputs" / keys[0] / "request.json").exists()

    # Both get rendered: the next tick requests nothing.
    for key in (keys[0], keys[2]):
        (data_dir / "outputs" / key / "summary.json").write_text("{}", encoding="utf-8")
    again = schedule.evaluate_tick(
        dg.build_schedule_context(
            instance=instance, repository_def=defs.get_repository_def(), resources=RESOURCES
        )
    )
    assert not again.run_requests and again.skip_message


def test_yaml_catalogue(instance: dg.DagsterInstance, data_dir: Path) -> None:
    (data_dir / "catalog.yaml").write_text(
        yaml.safe_dump([three_scene_request(seed=5), {"prompt": "x", "duration": 2}])
    )
    schedule = defs.resolve_schedule_def("catalogue_schedule")
    result = schedule.evaluate_tick(
        dg.build_schedule_context(
            instance=instance, repository_def=defs.get_repository_def(), resources=RESOURCES
        )
    )
    assert sum(len(parse_keys(r.tags[BULK_KEYS_TAG])) for r in result.run_requests) == 2
