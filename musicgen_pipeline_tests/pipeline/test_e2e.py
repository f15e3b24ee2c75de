"""End to end on a temporary instance with tiny-random models: a 3-scene partition, every asset."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import pytest
import soundfile as sf

from musicgen_pipeline import resources
from musicgen_pipeline.artifacts import AlignedTrack, SceneSegment, Seam, Soundtrack
from musicgen_pipeline.audio.seam_plan import TransitionPlan
from musicgen_pipeline.audio.timeline import scene_generation_seconds
from musicgen_pipeline.defs.assets.transition_report import (
    CHECK_DURATION,
    CHECK_LOOP,
    CHECK_SEAMS,
    transition_report,
)
from musicgen_pipeline.defs.metadata import SPEED_KEY, sig3
from musicgen_pipeline.instance import register_request
from musicgen_pipeline.launch import materialize, run_progress
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.quality import transition_options
from musicgen_pipeline.request import parse_request
from musicgen_pipeline.settings import get_settings
from musicgen_pipeline_tests.pipeline.conftest import make_home, soundtrack_assets, three_scene_request

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCENE_SECONDS = 3.0
LENIENT = {
    "MFCC_SIMILARITY_MIN": "-1",
    "SPECTRAL_FLUX_MAX": "1e12",
    "CHROMA_CORRELATION_MIN": "-1",
    "ENERGY_RATIO_MAX": "1e12",
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("e2e")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSICGEN_DATA", str(root / "data"))
        mp.setenv("DAGSTER_HOME", str(make_home(root)))
        mp.setenv("MUSICGEN_MODEL", "tiny-random")
        mp.setenv("DEMUCS_MODEL", "tiny-random")
        mp.setenv("STEM_SOURCE", "demucs")
        mp.delenv("LISTEN_URL", raising=False)  # the links use its default
        for key, value in LENIENT.items():
            mp.setenv(key, value)
        # Count real MusicGen loads in this process: empty both caches, wrap the loader.
        from musicgen_pipeline.models import loaders as musicgen_module

        loads: list[str] = []
        real_load = musicgen_module.load_musicgen

        def counting_load(*args: object, **kwargs: object) -> object:
            loads.append(str(args[0] if args else kwargs.get("model_id")))
            return real_load(*args, **kwargs)

        mp.setattr(musicgen_module, "_MODELS", {})
        mp.setattr(musicgen_module, "load_musicgen", counting_load)
        resources.clear_model_cache()
        request = parse_request(three_scene_request(SCENE_SECONDS), name="e2e")
        with dg.DagsterInstance.get() as instance:
            store = PartitionStore.for_data_dir(root / "data")
            key = register_request(instance, store, request)
            result = materialize(instance, store, key)
            yield {
                "store": store,
                "instance": instance,
                "key": key,
                "result": result,
                "request": request,
                "loads": loads,
                "data": root / "data",
                "home": root / "dagster_home",
            }
        resources.clear_model_cache()


def test_assets_hand_each_other_typed_frozen_values(rendered: dict) -> None:
    result: dg.ExecuteInProcessResult = rendered["result"]
    request = result.output_for_node("soundtrack_request")
    assert request == rendered["request"]
    segments = result.output_for_node("scene_segments")
    assert [type(s) for s in segments] == [SceneSegment] * 3 and [s.index for s in segments] == [0, 1, 2]
    aligned = result.output_for_node("aligned_segments")
    assert isinstance(aligned, AlignedTrack) and len(aligned.segments) == 3
    seams = result.output_for_node("segment_stems")
    assert [type(s) for s in seams] == [Seam] * 2
    assert all(isinstance(s.plan, TransitionPlan) and s.separated for s in seams)
    soundtrack = result.output_for_node("soundtrack")
    assert isinstance(soundtrack, Soundtrack) and Path(soundtrack.path).is_file()
    assert soundtrack.target_bpm == aligned.target_bpm and len(soundtrack.transitions) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        soundtrack.path = "elsewhere"  # type: ignore[misc]


def test_every_asset_of_the_partition_is_materialized(rendered: dict) -> None:
    result: dg.ExecuteInProcessResult = rendered["result"]
    assert result.success
    keys = {
        e.event_specific_data.materialization.asset_key for e in result.get_asset_materialization_events()
    }
    assert keys == {a.key for a in soundtrack_assets()}
    assert all(
        e.event_specific_data.materialization.partition == rendered["key"]
        for e in result.get_asset_materialization_events()
    )
    instance: dg.DagsterInstance = rendered["instance"]
    for asset in soundtrack_assets():
        assert instance.get_latest_materialization_event(asset.key) is not None


def test_soundtrack_file_and_duration(rendered: dict) -> None:
    folder = rendered["data"] / "outputs" / rendered["key"]
    summary = json.loads((folder / "summary.json").read_text())
    path = Path(summary["soundtrack_path"])
    assert path == folder / "soundtrack.wav" and path.exists()
    info = sf.info(str(path))
    assert info.subtype == "PCM_16" and info.samplerate == 32000
    report = json.loads((folder / "transition_report.json").read_text())
    request = rendered["request"]
    # The soundtrack lasts exactly the requested total (within one frame), and each seam's overlap is
    # centred on its scene boundary T_k within the beat-snapping window.
    assert report["duration"]["actual"] == pytest.approx(info.frames / info.samplerate, abs=1e-3)
    assert info.frames == round(request.total_duration * 32000)
    assert abs(report["duration"]["actual"] - request.total_duration) <= 1 / 32000
    assert report["duration"]["expected"] == request.total_duration
    assert report["duration"]["tolerance"] == pytest.approx(1 / 32000)
    boundaries = [SCENE_SECONDS, 2 * SCENE_SECONDS]
    assert len(report["transitions"]) == 2
    for transition, boundary in zip(report["transitions"], boundaries, strict=True):
        assert transition["target_time"] == pytest.approx(boundary)
        assert abs(transition["boundary_time"] - boundary) <= 1.5, transition
    generated = scene_generation_seconds([SCENE_SECONDS] * 3, transition_options(request, get_settings()))
    assert generated[0] > SCENE_SECONDS + request.crossfade_duration / 2
    for i in range(3):
        assert (folder / "segments" / f"scene_{i:02d}.wav").exists()
        assert (folder / "aligned" / f"scene_{i:02d}.wav").exists()
        assert (folder / "pictures" / f"scene_{i:02d}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        segment = sf.info(str(folder / "segments" / f"scene_{i:02d}.wav"))
        assert segment.frames == round(generated[i] * 32000)
    assert (folder / "pictures" / "soundtrack.png").exists()
    # Stems of both sides of each seam, summing to the cross-faded window.
    assert sorted(p.name for p in (folder / "stems" / "transition_00").iterdir()) == sorted(
        f"{side}_{stem}.wav" for side in ("prev", "next") for stem in ("drums", "bass", "other", "vocals")
    )


def _meta(instance: dg.DagsterInstance, asset: str) -> dict:
    return instance.get_latest_materialization_event(dg.AssetKey(asset)).asset_materialization.metadata


def _rows(value: dg.TableMetadataValue) -> list[dict]:
    return [dict(r.data) for r in value.records]


def test_metadata_and_checks(rendered: dict) -> None:
    instance: dg.DagsterInstance = rendered["instance"]
    key, folder = rendered["key"], rendered["data"] / "outputs" / rendered["key"]
    listen = f"http://127.0.0.1:8000/listen/{key}"  # LISTEN_URL's default
    meta = _meta(instance, "scene_segments")
    assert meta["model"].value == "tiny-random"
    assert meta["scenes"].value == 3
    assert meta["regenerations"].value == 0
    assert "real_time_factor" not in meta and meta[SPEED_KEY].value > 0  # named by its direction
    assert "data:image/png;base64," in meta["scene_0_picture"].value
    assert meta["listen"].value == f"{listen}#segments"
    segments = _rows(meta["segments"].value)
    assert [r["scene"] for r in segments] == [1, 2, 3]
    assert segments[0]["file"] == str(folder / "segments" / "scene_00.wav")
    assert meta["scene_1_file"].value == segments[0]["file"]
    assert meta["step_seconds"].value == round(meta["step_seconds"].value, 3)

    soundtrack = _meta(instance, "soundtrack")
    assert isinstance(soundtrack["listen"], dg.UrlMetadataValue) and soundtrack["listen"].value == listen
    # The real file under its own key: Dagster's IO manager writes its pickle's location under "path".
    assert soundtrack["soundtrack_file"].value == str(folder / "soundtrack.wav")
    assert "storage" in soundtrack["path"].value
    assert soundtrack["loudness_lufs"].value == pytest.approx(-14.0, abs=4.0)
    for name, digits in (("duration_seconds", 3), ("mix_seconds", 3), ("joined_seconds_before_trim", 3)):
        assert soundtrack[name].value == round(soundtrack[name].value, digits), name
    assert soundtrack["target_bpm"].value == sig3(soundtrack["target_bpm"].value)

    grids = _rows(_meta(instance, "beat_grids")["beat_grids"].value)
    assert [g["scene"] for g in grids] == [1, 2, 3] and all(g["bpm"] > 0 and g["beats"] > 0 for g in grids)
    aligned = _meta(instance, "aligned_segments")
    assert _rows(aligned["segments"].value)[2]["file"] == str(folder / "aligned" / "scene_02.wav")
    stems = _meta(instance, "segment_stems")
    assert stems["listen"].value == f"{listen}#stems"
    stem_rows = _rows(stems["stems"].value)
    assert len(stem_rows) == 2 * 2 * 4 and {r["side"] for r in stem_rows} == {"prev", "next"}
    assert all(Path(r["file"]).parent.parent == folder / "stems" for r in stem_rows)

    report = _meta(instance, "transition_report")
    assert report["report_file"].value == str(folder / "transition_report.json")
    assert [r["seam"] for r in _rows(report["scores"].value)] == [1, 2]
    request_meta = _meta(instance, "soundtrack_request")
    prompts = _rows(request_meta["prompts"].value)
    assert prompts[0]["prompt"].startswith("peaceful morning, cinematic orchestral")

    result: dg.ExecuteInProcessResult = rendered["result"]
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {CHECK_SEAMS, CHECK_LOOP, CHECK_DURATION}
    assert evaluations[CHECK_DURATION].passed and evaluations[CHECK_LOOP].passed
    assert evaluations[CHECK_SEAMS].passed  # lenient thresholds in this module
    for evaluation in evaluations.values():  # each result names the soundtrack it judged
        assert evaluation.partition == key
        assert evaluation.description.startswith(f"{key}: ")
        assert evaluation.metadata["partition"].value == key
    specs = {s.name: s.description for s in transition_report.check_specs}
    assert specs[CHECK_DURATION].startswith("ERROR on failure")
    assert specs[CHECK_SEAMS].startswith("WARN on failure") and specs[CHECK_LOOP].startswith(
        "WARN on failure"
    )


def test_musicgen_loaded_once_and_no_retry(rendered: dict) -> None:
    assert rendered["loads"] == ["tiny-random"]
    assert resources.load_counts()["musicgen"] == 1
    progress = run_progress(rendered["instance"], rendered["store"], rendered["result"].run_id)
    assert progress is not None and progress.status == "succeeded" and progress.retries == 0
    assert progress.steps_done == progress.steps_total == len(soundtrack_assets())
    assert progress.soundtrack_path and progress.soundtrack_path.endswith("soundtrack.wav")


def test_catalog_gains_a_row(rendered: dict) -> None:
    with (rendered["data"] / "outputs" / "catalog.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["partition"] for r in rows] == [rendered["key"]]
    assert float(rows[0]["duration_seconds"]) > 0 and rows[0]["model"] == "tiny-random"
    assert rows[0]["transitions"] == "2"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _default_signals() -> None:
    # `dagster dev`/the webserver started from a background shell may inherit ignored SIGINT/SIGTERM.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


ASSET_GRAPH = "{ assetNodes { assetKey { path } dependencyKeys { path } isPartitioned } }"
RUN = (
    """query ($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status tags { key value } } } }"""
)


def test_webserver_serves_asset_graph_and_finished_run(rendered: dict) -> None:
    port = _free_port()
    env = dict(os.environ, DAGSTER_HOME=str(rendered["home"]), MUSICGEN_DATA=str(rendered["data"]))
    webserver = Path(sys.executable).with_name("dagster-webserver")
    proc = subprocess.Popen(
        [str(webserver), "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_default_signals,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.time() + 180
        graph = None
        while time.time() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            try:
                response = httpx.post(url, json={"query": ASSET_GRAPH}, timeout=10)
                data = response.json().get("data") if response.status_code == 200 else None
                if data and data.get("assetNodes"):
                    graph = data["assetNodes"]
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        assert graph is not None, "webserver did not answer in time"
        nodes = {"/".join(n["assetKey"]["path"]): n for n in graph}
        assert {a.key.to_user_string() for a in soundtrack_assets()} | {"catalog"} <= set(nodes)
        assert {"/".join(d["path"]) for d in nodes["soundtrack"]["dependencyKeys"]} == {
            "soundtrack_request",
            "aligned_segments",
            "segment_stems",
        }
        assert nodes["scene_segments"]["isPartitioned"] and not nodes["catalog"]["isPartitioned"]
        run_id = rendered["result"].run_id
        response = httpx.post(url, json={"query": RUN, "variables": {"id": run_id}}, timeout=30)
        run = response.json()["data"]["runOrError"]
        assert run["__typename"] == "Run" and run["status"] == "SUCCESS"
        assert {t["key"]: t["value"] for t in run["tags"]}["dagster/partition"] == rendered["key"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
