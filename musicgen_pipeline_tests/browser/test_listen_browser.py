"""The UI story of the README, in a real browser (headless Chromium) on a real tiny-random render.

One module-scoped stack: `dagster dev` (webserver + daemon) and `musicgen-pipeline serve`, on a
temporary instance and data folder, `LISTEN_URL` pointing at the server. The render is launched the way
the README's UI section says: add a partition and materialize `soundtrack_request` with the request in
its config (the GraphQL calls the UI's Materialize dialog makes); the `render_after_request` sensor
then renders the partition and `catalog_after_render` refreshes the catalog. Then, as a person would:
- the listening page (reached from the index) loads with no console errors, every player loads, the
  soundtrack <audio> reports the file's duration within 50 ms, and clicking each seam marker lands the
  player within 100 ms of that seam's crossfade start (transition_report.json);
- the Dagster asset page of `soundtrack` shows the clickable link to that page.
Screenshots (`listen.png`, `dagster-soundtrack.png`) land in the module's temp folder (printed with -s).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf

from musicgen_pipeline_tests.api.server import ApiServer, free_port, server_env
from musicgen_pipeline_tests.browser.chromium import ConsoleLog, browser_context, chromium_path
from musicgen_pipeline_tests.browser.dagster_ui import DagsterDev
from musicgen_pipeline_tests.pipeline.conftest import make_home

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
KEY = "browser-ui"
REQUEST = {
    "name": "browser",
    "base_prompt": "warm acoustic guitar",
    "scenes": [{"mood": "calm", "duration": 3.0}, {"mood": "joyful", "duration": 3.0}],
    "crossfade_duration": 1.0,
    "seed": 5,
    "model": "tiny-random",
}
LENIENT = {
    "MFCC_SIMILARITY_MIN": "-1",
    "SPECTRAL_FLUX_MAX": "1e12",
    "CHROMA_CORRELATION_MIN": "-1",
    "ENERGY_RATIO_MAX": "1e12",
}
RENDER_TIMEOUT = 900.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    chromium_path()  # fail fast, before minutes of rendering, when the browser is missing
    base = tmp_path_factory.mktemp("browser")
    api_port = free_port()
    env = server_env(base, STEM_SOURCE="demucs", LISTEN_URL=f"http://127.0.0.1:{api_port}", **LENIENT)
    make_home(base)
    ui = DagsterDev(env, REPO, free_port(), base / "dagster-dev.log")
    api = ApiServer(env, base / "serve.log", port=api_port)
    try:
        ui.start()
        api.start()
        yield {"base": base, "ui": ui, "api": api, "outputs": base / "data" / "outputs"}
    finally:
        api.stop()
        ui.stop()


@pytest.fixture(scope="module")
def rendered(stack: dict) -> dict[str, object]:
    """Launch as the README's UI section says, and wait for the render and the catalog refresh."""
    ui: DagsterDev = stack["ui"]
    ui.add_partition("soundtrack_requests", KEY)
    first = ui.materialize(
        ["soundtrack_request"],
        KEY,
        {"ops": {"soundtrack_request": {"config": {"request_json": json.dumps(REQUEST)}}}},
    )
    deadline = time.monotonic() + RENDER_TIMEOUT
    runs: list[dict] = []
    while time.monotonic() < deadline:
        runs = ui.runs()
        by_job = {r["jobName"]: r for r in runs}
        failed = [r for r in runs if r["status"] in ("FAILURE", "CANCELED")]
        assert not failed, (failed, stack["base"] / "dagster-dev.log")
        render, catalog = by_job.get("render_soundtrack"), by_job.get("refresh_catalog")
        if render and catalog and render["status"] == catalog["status"] == "SUCCESS":
            return {"first": first, "runs": runs, "folder": stack["outputs"] / KEY}
        time.sleep(3.0)
    raise AssertionError(f"no rendered soundtrack and refreshed catalog in {RENDER_TIMEOUT} s: {runs}")


def test_ui_launch_renders_the_partition_and_refreshes_the_catalog(rendered: dict, stack: dict) -> None:
    runs = {r["jobName"]: r for r in rendered["runs"]}
    assert runs["__ASSET_JOB"]["runId"] == rendered["first"]
    assert runs["render_soundtrack"]["tags"]["dagster/partition"] == KEY
    assert runs["render_soundtrack"]["tags"]["dagster/sensor_name"] == "render_after_request"
    assert (rendered["folder"] / "summary.json").exists()
    assert KEY in (stack["outputs"] / "catalog.csv").read_text()


def test_listening_page_plays_the_soundtrack_and_seeks_to_each_seam(rendered: dict, stack: dict) -> None:
    folder: Path = rendered["folder"]
    base: Path = stack["base"]
    api: ApiServer = stack["api"]
    info = sf.info(str(folder / "soundtrack.wav"))
    expected_seconds = info.frames / info.samplerate
    report = json.loads((folder / "transition_report.json").read_text())
    seams = [t["overlap_start_time"] for t in report["transitions"]]
    assert len(seams) == 1
    with browser_context(base / "chromium-listen") as browser:
        page = browser.new_page()
        console = ConsoleLog(page)
        page.goto(f"{api.url}/listen/")
        page.click(f"a[href='/listen/{KEY}']")
        page.wait_for_url(f"{api.url}/listen/{KEY}")
        page.wait_for_function("document.getElementById('soundtrack').readyState >= 1", timeout=60_000)
        duration = page.evaluate("document.getElementById('soundtrack').duration")
        assert abs(duration - expected_seconds) <= 0.05, (duration, expected_seconds)
        # Every player (segments, aligned segments, seam stems) loads its metadata without a media error.
        page.wait_for_function(
            "[...document.querySelectorAll('audio')].every(a => a.readyState >= 1 || a.error)", timeout=60_000
        )
        players = page.evaluate(
            "[...document.querySelectorAll('audio')].map(a => [a.src, a.error ? a.error.code : 0, a.duration])"
        )
        assert len(players) == 1 + 2 + 2 + 8, players
        assert [p for p in players if p[1] or not p[2] > 0] == []
        for index, seam_time in enumerate(seams):
            page.evaluate(
                "window.__seeked = null; const a = document.getElementById('soundtrack');"
                "a.addEventListener('seeked', () => { window.__seeked = a.currentTime; }, {once: true});"
            )
            page.locator("#timeline button.seam").nth(index).click()
            page.wait_for_function("window.__seeked !== null", timeout=30_000)
            landed = page.evaluate("window.__seeked")
            assert abs(landed - seam_time) <= 0.1, (index, landed, seam_time)
        text = page.inner_text("body")
        assert "Transition scores" in text and "Regenerations" in text and "Seam stems" in text
        shot = base / "listen.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"listening page screenshot: {shot}")
        assert console.errors == []


def test_dagster_asset_page_links_to_the_player(rendered: dict, stack: dict) -> None:
    ui: DagsterDev = stack["ui"]
    api: ApiServer = stack["api"]
    base: Path = stack["base"]
    listen = f"{api.url}/listen/{KEY}"
    with browser_context(base / "chromium-dagster") as browser:
        page = browser.new_page()
        page.goto(f"{ui.url}/assets/soundtrack")
        link = page.locator(f"a[href='{listen}']").first
        link.wait_for(state="visible", timeout=90_000)
        skip = page.get_by_role("button", name="Skip")  # the UI's first-visit newsletter dialog
        if skip.count():
            skip.click()
        shot = base / "dagster-soundtrack.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"Dagster asset page screenshot: {shot}")
        page.goto(link.get_attribute("href"))
        page.wait_for_function("document.getElementById('soundtrack') !== null", timeout=30_000)
