"""Bulk generation writes, per request, exactly the generation state a single render writes.

Three requests (continuation, independent, continuation with other prompts) with an impossible seam
threshold and one regeneration allowed, so every plan step has first attempts *and* regenerations
batched across requests; `max_batch=2` so calls are chunked. Reference: each request rendered alone
by `SegmentGenerator.run()` (the `scene_segments` logic), its Dagster retries (`RegenerateScene`) emulated. Audio is compared
sample for sample (exact float32) and codes byte for byte.
"""

import json
import logging
from pathlib import Path

import pytest

from musicgen_pipeline.bulk_generation import generate_bulk
from musicgen_pipeline.media import read_exact
from musicgen_pipeline.partition_store import PartitionStore
from musicgen_pipeline.request import parse_request
from musicgen_pipeline.resources import MusicGenResource
from musicgen_pipeline.scene_attempts import RegenerateScene, SegmentGenerator
from musicgen_pipeline.settings import get_settings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

LOG = logging.getLogger("test_bulk_generation")


def _request(seed: int, conditioning: str, moods: tuple[str, str]):
    raw = {
        "base_prompt": "soundtrack",
        "scenes": [{"mood": moods[0], "duration": 2.5}, {"mood": moods[1], "duration": 2.5}],
        "crossfade_duration": 0.5,
        "seed": seed,
        "model": "tiny-random",
        "scene_conditioning": conditioning,
    }
    return parse_request(raw, name=f"bulk{seed}")


REQUESTS = {
    "req-a": _request(1, "continuation", ("calm piano", "epic drums")),
    "req-b": _request(2, "independent", ("jazz", "lofi beat")),
    "req-c": _request(3, "continuation", ("dark night", "morning")),
}


def _generator(key: str) -> SegmentGenerator:
    settings = get_settings()
    files = PartitionStore(settings.outputs_dir).files(key)
    return SegmentGenerator(LOG, REQUESTS[key], MusicGenResource(), settings, files)


def _content(path: Path) -> bytes:
    """A file's content; for a WAV its samples (float32, exact): libsndfile's PEAK chunk of a float WAV
    holds the time it was written, so two writes of the same samples differ in the header."""
    if path.suffix == ".wav":
        samples = read_exact(path).samples
        return repr(samples.shape).encode() + samples.tobytes()
    return path.read_bytes()


def _state_files(data: Path, key: str) -> dict[str, bytes]:
    root = data / "outputs" / key / "generation"
    return {str(p.relative_to(root)): _content(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _audio_and_choices(files: dict[str, bytes]) -> tuple[dict[str, bytes], list[tuple[int, int, bool]]]:
    audio = {name: body for name, body in files.items() if name.endswith((".wav", ".codes.npy"))}
    choices = []
    for name, body in files.items():
        if name.endswith("accepted.json"):
            entry = json.loads(body)
            choices.append((entry["record"]["attempt"], entry["record"]["seed"], entry["exhausted"]))
    return audio, choices


@pytest.fixture
def loop_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MUSICGEN_MODEL", "tiny-random")
    monkeypatch.setenv("MFCC_SIMILARITY_MIN", "2.0")  # no seam can pass: one regeneration per seam
    monkeypatch.setenv("MAX_REGEN_ATTEMPTS", "1")
    monkeypatch.setenv("USE_STEM_AWARE_CROSSFADE", "false")
    return tmp_path


def test_bulk_state_equals_single_renders_and_leaves_nothing_to_generate(loop_env, monkeypatch):
    singles = loop_env / "single"
    monkeypatch.setenv("MUSICGEN_DATA", str(singles))
    for key in REQUESTS:
        while True:  # Dagster's retries of scene_segments, emulated
            try:
                _generator(key).run()
                break
            except RegenerateScene:
                continue

    bulk = loop_env / "bulk"
    monkeypatch.setenv("MUSICGEN_DATA", str(bulk))
    generators = {key: _generator(key) for key in REQUESTS}
    model = generators["req-a"].model
    calls: list[int] = []
    real = model.generate_rows

    def counting(rows, **kwargs):
        calls.append(len(rows))
        return real(rows, **kwargs)

    monkeypatch.setattr(model, "generate_rows", counting)
    outcomes = generate_bulk(generators, model, max_batch=2)

    # rows of different requests shared calls, never more than the limit
    # 3 requests x (scene 0 + scene 1 + one regeneration of scene 1: scene 0 has no seam to fail)
    assert max(calls) == 2 and sum(calls) == 3 * 3
    for key in REQUESTS:
        outcome = outcomes[key]
        assert outcome.error is None and outcome.seconds > 0 and outcome.batches
        assert outcome.real_time_factor > 0
        single_audio, single_choices = _audio_and_choices(_state_files(singles, key))
        bulk_audio, bulk_choices = _audio_and_choices(_state_files(bulk, key))
        assert bulk_audio.keys() == single_audio.keys() and len(bulk_audio) == 3 * 2
        for name in single_audio:
            assert bulk_audio[name] == single_audio[name], f"{key}: {name} differs from the single render"
        assert bulk_choices == single_choices and len(bulk_choices) == 2
        # the partition's own step now finds every scene settled and generates nothing
        after = _generator(key)
        after.run()
        assert after.generated_now == set()


def test_a_failing_request_fails_alone(loop_env, monkeypatch):
    monkeypatch.setenv("MUSICGEN_DATA", str(loop_env / "bulk"))
    generators = {key: _generator(key) for key in ("req-a", "req-c")}
    model = generators["req-a"].model
    real = model.generate_rows

    def broken_for_c(rows, **kwargs):
        if any("dark night" in r.prompt for r in rows):
            raise RuntimeError("model error on this row")
        return real(rows, **kwargs)

    monkeypatch.setattr(model, "generate_rows", broken_for_c)
    outcomes = generate_bulk(generators, model, max_batch=8)
    assert outcomes["req-c"].error == "RuntimeError: model error on this row"
    assert outcomes["req-a"].error is None
    state_a = generators["req-a"].state
    assert all((state_a / f"scene_{i:02d}" / "accepted.json").exists() for i in range(2))
    assert not list(generators["req-c"].state.rglob("accepted.json"))
