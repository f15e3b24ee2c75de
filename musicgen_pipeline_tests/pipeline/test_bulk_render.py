"""A bulk run through the pipeline: `musicgen-pipeline render bulk1.json bulk2.json bulk3.json` (one bulk:
`launch.materialize_bulk`), the third request broken, against `render bulk1.json` alone on a fresh
instance (tiny-random models).

- A request's soundtrack and scene audio are bit-identical between the bulk and its single render.
- Every request stays its own partition: its own render run, assets and metadata; the bulk's
  `scene_generation` materialization of each partition says its generation seconds, real-time factor
  and batch size.
- Failure isolation: the broken request (its rows make the model raise) fails its own render run
  only; its neighbours render; `render` prints each request's report (or its error) and exits 1.
- Re-running the bulk pass generates nothing more (every scene is settled on disk).

The quality loop is on with an impossible threshold and one regeneration, so the bulk batches first
attempts, continuation rows and regenerations across the requests.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import dagster as dg
import pytest

from musicgen_pipeline import resources
from musicgen_pipeline.bulk_plan import parse_keys
from musicgen_pipeline.cli import main
from musicgen_pipeline.launch import bulk_generate
from musicgen_pipeline.media import read_exact
from musicgen_pipeline.models.musicgen import MusicGen
from musicgen_pipeline.naming import BULK_JOB, BULK_KEYS_TAG, RENDER_JOB, run_tags
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.request import parse_request
from musicgen_pipeline_tests.pipeline.conftest import make_home, write_json

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

BROKEN = "broken scene"


def _raw(seed: int, moods: tuple[str, str]) -> dict[str, object]:
    return {
        "base_prompt": "soundtrack",
        "scenes": [{"mood": moods[0], "duration": 2.0}, {"mood": moods[1], "duration": 2.0}],
        "crossfade_duration": 0.5,
        "seed": seed,
        "model": "tiny-random",
        "scene_conditioning": "continuation",
        "stem_aware": False,
    }


RAW = {"bulk1": _raw(1, ("calm piano", "epic drums")), "bulk2": _raw(2, ("jazz", "lofi beat")),
       "bulk3": _raw(3, (BROKEN, "dark night"))}  # fmt: skip
A, B, C = (parse_request(raw) for raw in RAW.values())  # as `render` reads their files


def _render(mp: pytest.MonkeyPatch, root: Path, names: list[str]) -> tuple[int, str, str]:
    """`musicgen-pipeline render <names>.json` on a fresh data folder and instance under `root`."""
    mp.setenv("MUSICGEN_DATA", str(root / "data"))
    mp.setenv("DAGSTER_HOME", str(make_home(root)))
    files = [str(write_json(root / f"{name}.json", RAW[name])) for name in names]
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["render", *files])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("bulk")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSICGEN_MODEL", "tiny-random")
        mp.setenv("STEM_SOURCE", "dsp")
        mp.setenv("MFCC_SIMILARITY_MIN", "2.0")  # no seam passes: one regeneration per seam
        mp.setenv("MAX_REGEN_ATTEMPTS", "1")
        mp.setenv("MUSICGEN_MAX_BATCH", "8")
        real = MusicGen.generate_rows
        calls: list[list[str]] = []

        def generate_rows(self, rows, **kwargs):  # a model error on every row of request C
            calls.append([r.prompt for r in rows])
            if any(BROKEN in r.prompt for r in rows):
                raise RuntimeError("model error on this row")
            return real(self, rows, **kwargs)

        mp.setattr(MusicGen, "generate_rows", generate_rows)
        resources.clear_model_cache()
        bulk = _render(mp, root / "bulk", ["bulk1", "bulk2", "bulk3"])
        bulk_calls = list(calls)
        calls.clear()
        bulk_instance = dg.DagsterInstance.get()
        bulk_store = PartitionStore.for_data_dir(root / "bulk" / "data")
        keys = [r.partition_key() for r in (A, B, C)]
        again = bulk_generate(bulk_instance, bulk_store, keys[:2], max_batch=8, log_level="WARNING")
        again_calls = list(calls)
        single = _render(mp, root / "single", ["bulk1"])
        yield {
            "keys": keys,
            "bulk": bulk,
            "bulk_instance": bulk_instance,
            "bulk_store": bulk_store,
            "bulk_calls": bulk_calls,
            "again": again,
            "again_calls": again_calls,
            "single": single,
            "single_store": PartitionStore.for_data_dir(root / "single" / "data"),
        }
        bulk_instance.dispose()
        resources.clear_model_cache()


def _samples(path: Path) -> bytes:
    """The file's samples, exact (float32): libsndfile's PEAK chunk of a float WAV holds the time it was
    written, so two writes of the same samples differ in the header bytes."""
    audio = read_exact(path)
    assert audio.frames > 0
    return repr((audio.samples.shape, audio.sample_rate)).encode() + audio.samples.tobytes()


def test_bulk_audio_is_bit_identical_to_the_single_render(renders: dict) -> None:
    key_a = renders["keys"][0]
    assert renders["single"][0] == 0
    bulk_files = renders["bulk_store"].files(key_a)
    single_files = renders["single_store"].files(key_a)
    bulk_track = renders["bulk_store"].soundtrack_file(key_a)
    single_track = renders["single_store"].soundtrack_file(key_a)
    assert _samples(bulk_track) == _samples(single_track)
    for i in range(2):
        assert _samples(bulk_files.segment_path(i)) == _samples(single_files.segment_path(i))
    # the same attempts were kept (the quality loop's choices did not depend on the batching)
    assert json.loads(bulk_files.summary.read_text())["seed"] == A.seed
    bulk_report = json.loads(bulk_files.report.read_text())["quality_loop"]
    single_report = json.loads(single_files.report.read_text())["quality_loop"]
    assert bulk_report == single_report


def test_rows_of_different_requests_shared_calls(renders: dict) -> None:
    calls = renders["bulk_calls"]
    # scene 0 of A, B, C in one call; it fails (C), so the chunk is bisected: A alone, then B with C
    # (fails), then B alone and C alone (fails again, recorded)
    assert [len(c) for c in calls[:5]] == [3, 1, 2, 1, 1] and BROKEN in calls[4][0]
    # scene 1 of A and B together (each continuing its own scene 0), then both regenerations together
    assert [len(c) for c in calls[5:7]] == [2, 2]
    assert all(BROKEN not in p for c in calls[5:7] for p in c)
    # then the render runs: A's and B's generate nothing; C's own scene_segments tries alone (and fails)
    assert len(calls) == 8 and len(calls[7]) == 1 and BROKEN in calls[7][0]


def test_each_request_is_its_own_partition_with_bulk_metadata(renders: dict) -> None:
    instance, keys = renders["bulk_instance"], renders["keys"]
    bulk_run = instance.get_runs(filters=dg.RunsFilter(job_name=BULK_JOB))[-1]  # the first (newest first)
    assert parse_keys(bulk_run.tags[BULK_KEYS_TAG]) == keys
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=RENDER_JOB))
    assert sorted(r.tags["dagster/partition"] for r in runs) == sorted(keys)  # one render run each
    for run in runs:  # tagged as every render run of its request, plus the bulk run it follows
        request = {k: r for k, r in zip(keys, (A, B, C), strict=True)}[run.tags["dagster/partition"]]
        assert run_tags(request, bulk_run=bulk_run.run_id).items() <= run.tags.items()
    assert not instance.get_runs(filters=dg.RunsFilter(job_name=BULK_JOB))[-1].tags.get("dagster/partition")
    for key in keys:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("scene_generation"), asset_partitions=[key]), limit=5
        ).records
        (record,) = [r for r in records if r.run_id == bulk_run.run_id]
        meta = {k: v.value for k, v in record.asset_materialization.metadata.items()}
        assert meta["bulk_partitions"] == 3
        if key == keys[2]:
            assert meta["error"] == "RuntimeError: model error on this row" and meta["rows_generated"] == 0
            continue
        assert meta["error"] == "" and meta["rows_generated"] == 3 and meta["batch_sizes"] == "1, 2, 2"
        assert meta["batch_size"] == 2 and meta["generation_seconds"] > 0 and meta["real_time_factor"] > 0


def test_render_prints_each_report_and_a_broken_request_fails_alone(renders: dict) -> None:
    code, out, err = renders["bulk"]
    keys, store, instance = renders["keys"], renders["bulk_store"], renders["bulk_instance"]
    assert code == 1  # one request failed
    sections = out.split("== ")[1:]
    assert [s.split(" ", 1)[0].rsplit("/", 1)[-1] for s in sections] == [
        "bulk1.json",
        "bulk2.json",
        "bulk3.json",
    ]
    for section, key in zip(sections[:2], keys[:2], strict=True):
        assert (
            f"(partition {key})" in section and "soundtrack:" in section and "transition report:" in section
        )
    assert "soundtrack:" not in sections[2]
    assert (
        "bulk3.json: run" in err
        and "failed in step scene_segments: RuntimeError: model error on this row" in err
    )
    assert "bulk: 2 of 3 rendered" in err
    status = {
        r.tags["dagster/partition"]: r.status
        for r in instance.get_runs(filters=dg.RunsFilter(job_name=RENDER_JOB))
    }
    assert status == {keys[0]: dg.DagsterRunStatus.SUCCESS, keys[1]: dg.DagsterRunStatus.SUCCESS,
                      keys[2]: dg.DagsterRunStatus.FAILURE}  # fmt: skip
    assert store.is_rendered(keys[1]) and not store.is_rendered(keys[2])


def test_re_running_the_bulk_pass_generates_nothing(renders: dict) -> None:
    assert all(r.success for r in renders["again"]) and renders["again_calls"] == []
