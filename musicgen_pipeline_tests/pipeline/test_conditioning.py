"""scene_conditioning: continuation (scene by scene, token-level) vs independent (one batched call)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import soundfile as sf

from musicgen_pipeline import resources
from musicgen_pipeline.launch import materialize, register_request
from musicgen_pipeline.request import parse_request

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("conditioning", "calls"), [("independent", 1), ("continuation", 3)])
def test_generate_calls_and_scene_lengths(
    instance: dg.DagsterInstance,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    conditioning: str,
    calls: int,
) -> None:
    monkeypatch.setenv("MUSICGEN_MODEL", "tiny-random")
    monkeypatch.setenv("STEM_SOURCE", "dsp")
    monkeypatch.setenv("USE_QUALITY_LOOP", "false")
    model, _ = resources.MusicGenResource().get("tiny-random")
    seen: list[tuple[int, float, bool]] = []
    real = type(model).generate

    def spy(self, prompts, duration, **kwargs):  # type: ignore[no-untyped-def]
        seen.append((len(prompts), duration, kwargs.get("continue_from") is not None))
        return real(self, prompts, duration, **kwargs)

    monkeypatch.setattr(type(model), "generate", spy)
    durations = [1.5, 2.5, 2.0]
    request = parse_request(
        {
            "base_prompt": "test",
            "scenes": [{"mood": str(i), "duration": d} for i, d in enumerate(durations)],
            "crossfade_duration": 0.3,
            "scene_conditioning": conditioning,
        }
    )
    key = register_request(instance, request)
    assert materialize(instance, key, log_level="WARNING").success
    assert len(seen) == calls
    if conditioning == "independent":
        assert seen == [(3, 2.5, False)]  # one batched pass at the longest scene, rows cut after
    else:
        assert seen == [(1, 1.5, False), (1, 2.5, True), (1, 2.0, True)]  # each scene continues the last
    for i, seconds in enumerate(durations):
        info = sf.info(str(data_dir / "outputs" / key / "segments" / f"scene_{i:02d}.wav"))
        assert info.frames == round(seconds * info.samplerate)
