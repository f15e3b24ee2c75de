"""scene_conditioning: continuation (scene by scene, token-level) vs independent (one batched call)."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
import soundfile as sf

from musicgen_pipeline import resources
from musicgen_pipeline.instance import register_request
from musicgen_pipeline.launch import materialize
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.request import parse_request
from musicgen_pipeline.settings import get_settings

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("conditioning", "calls"), [("independent", 1), ("continuation", 3)])
def test_generate_calls_and_scene_lengths(
    instance: dg.DagsterInstance,
    data_dir: Path,
    store: PartitionStore,
    monkeypatch: pytest.MonkeyPatch,
    conditioning: str,
    calls: int,
) -> None:
    monkeypatch.setenv("MUSICGEN_MODEL", "tiny-random")
    monkeypatch.setenv("STEM_SOURCE", "dsp")
    monkeypatch.setenv("USE_QUALITY_LOOP", "false")
    model, _ = resources.MusicGenResource().get(get_settings(), "tiny-random")
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
    key = register_request(instance, store, request)
    assert materialize(instance, store, key, log_level="WARNING").success
    assert len(seen) == calls
    # Each scene is generated with its share of both crossfades, 1.5 s of beat-snapping slack and (after
    # the first) the 25 % tempo-stretch margin: 1.5+0.15+1.5, (2.5+0.3+1.5)*1.25, (2.0+0.15+1.5)*1.25.
    generated = [3.15, 5.375, 4.562]
    if conditioning == "independent":
        assert seen == [(3, 5.375, False)]  # one batched pass at the longest scene, rows cut after
    else:
        assert seen == [(1, 3.15, False), (1, 5.375, True), (1, 4.562, True)]  # each continues the last
    soundtrack = sf.info(str(data_dir / "outputs" / key / "soundtrack.wav"))
    assert soundtrack.frames == round(sum(durations) * soundtrack.samplerate)
    for i, seconds in enumerate(generated):
        info = sf.info(str(data_dir / "outputs" / key / "segments" / f"scene_{i:02d}.wav"))
        assert info.frames == round(seconds * info.samplerate)


def test_melody_request(
    instance: dg.DagsterInstance, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from musicgen_pipeline.audio.io import Audio, write_audio
    from musicgen_pipeline.cli import main

    monkeypatch.setenv("STEM_SOURCE", "dsp")
    t = np.arange(32000 * 2) / 32000
    melody = write_audio(data_dir / "tune.wav", Audio(0.3 * np.sin(2 * np.pi * 440 * t), 32000))
    request = data_dir / "melody.json"
    raw = {"prompt": "flute", "duration": 1.5, "model": "tiny-random-melody", "melody": str(melody)}
    request.write_text(json.dumps(raw), encoding="utf-8")
    assert main(["render", str(request)]) == 0
    plain = data_dir / "plain.json"
    plain.write_text(json.dumps({**raw, "model": "tiny-random"}), encoding="utf-8")
    assert main(["render", str(plain)]) == 2  # a model without melody conditioning: one line, before any run
