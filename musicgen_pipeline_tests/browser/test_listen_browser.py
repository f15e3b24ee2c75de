"""The listening page in a real browser (headless Chromium) after a real tiny-random render.

One module-scoped render (`musicgen-pipeline render`, 2 scenes) and one `musicgen-pipeline serve`;
then, as a person would: open the index, click through to the soundtrack, let its metadata load
(the <audio> duration must equal the file's within 50 ms), click each seam marker (the player must land
within 100 ms of the seam's crossfade start from transition_report.json), and no console errors.
Screenshots land in the test's temp folder (`listen.png`, printed with -s).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
import soundfile as sf

from musicgen_pipeline_tests.api.server import ApiServer, server_env
from musicgen_pipeline_tests.browser.chromium import ConsoleLog, browser_context, chromium_path

pytestmark = pytest.mark.slow

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


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    chromium_path()  # fail fast, before minutes of rendering, when the browser is missing
    base = tmp_path_factory.mktemp("browser")
    env = server_env(base, STEM_SOURCE="demucs", **LENIENT)
    request = base / "request.json"
    request.write_text(json.dumps(REQUEST), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "musicgen_pipeline.cli", "render", str(request)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    outputs = base / "data" / "outputs"
    (folder,) = [p for p in outputs.iterdir() if (p / "summary.json").exists()]
    return {"base": base, "env": env, "key": folder.name, "folder": folder}


@pytest.fixture(scope="module")
def api(rendered: dict) -> Iterator[ApiServer]:
    server = ApiServer(rendered["env"], rendered["base"] / "serve.log").start()
    try:
        yield server
    finally:
        server.stop()


def test_listening_page_plays_the_soundtrack_and_seeks_to_each_seam(rendered: dict, api: ApiServer) -> None:
    key, folder, base = rendered["key"], rendered["folder"], rendered["base"]
    info = sf.info(str(folder / "soundtrack.wav"))
    expected_seconds = info.frames / info.samplerate
    report = json.loads((folder / "transition_report.json").read_text())
    seams = [t["overlap_start_time"] for t in report["transitions"]]
    assert len(seams) == 1
    with browser_context(base / "chromium-profile") as browser:
        page = browser.new_page()
        console = ConsoleLog(page)
        page.goto(f"{api.url}/listen/")
        page.click(f"a[href='/listen/{key}']")
        page.wait_for_url(f"{api.url}/listen/{key}")
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
