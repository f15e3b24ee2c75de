from __future__ import annotations

import json
from pathlib import Path

import pytest

from musicgen_pipeline.request import (
    MAX_SCENE_SECONDS,
    MAX_SCENES,
    RequestError,
    check_partition_key,
    parse_request,
    parse_request_text,
    requests_in_document,
)
from musicgen_pipeline_tests.pipeline.conftest import three_scene_request


def test_scene_prompts_follow_mood_and_base_or_override() -> None:
    raw = three_scene_request()
    raw["scenes"][1]["prompt"] = "brass fanfare"  # type: ignore[index]
    request = parse_request(raw)
    assert request.scene_prompts() == [
        "peaceful morning, cinematic orchestral soundtrack with sweeping strings",
        "joyful celebration, brass fanfare",
        "gentle farewell, cinematic orchestral soundtrack with sweeping strings",
    ]
    assert request.total_duration == 9.0
    assert request.expected_duration == 9.0  # seams are centred on scene boundaries, not taken out
    assert request.duration_tolerance == pytest.approx(0.05)


def test_single_prompt_request_is_one_scene() -> None:
    request = parse_request({"prompt": "lofi beat", "duration": "12", "mood": "calm"})
    assert len(request.scenes) == 1
    assert request.scenes[0].duration == 12.0
    assert request.scene_prompts() == ["calm, lofi beat"]


def test_every_problem_is_reported_with_field_value_and_limit() -> None:
    raw = {
        "base_prompt": "",
        "scenes": [{"mood": "a", "duration": 0.5}, {"mood": 3, "duration": MAX_SCENE_SECONDS + 1}, "x"],
        "seed": -1,
        "output_format": "mp4",
        "beat_aligned": "yes",
        "scene_conditioning": "magic",
    }
    with pytest.raises(RequestError) as info:
        parse_request(raw)
    fields = {p.field for p in info.value.problems}
    assert fields >= {
        "base_prompt",
        "scenes[0].duration",
        "scenes[1].mood",
        "scenes[1].duration",
        "scenes[2]",
        "seed",
        "output_format",
        "beat_aligned",
        "scene_conditioning",
    }
    duration = next(p for p in info.value.problems if p.field == "scenes[1].duration")
    assert duration.value == MAX_SCENE_SECONDS + 1 and "600" in duration.message
    assert "scenes[0].duration=0.5" in str(info.value)


def test_limits_on_scene_count_and_crossfade() -> None:
    with pytest.raises(RequestError, match=f"at most {MAX_SCENES} scenes"):
        parse_request({"base_prompt": "x", "scenes": [{"duration": 1}] * (MAX_SCENES + 1)})
    with pytest.raises(RequestError, match="half the shortest scene"):
        parse_request(
            {"base_prompt": "x", "scenes": [{"duration": 2}, {"duration": 2}], "crossfade_duration": 1.5}
        )


def test_partition_key_is_content_based_and_safe() -> None:
    a = parse_request(three_scene_request(), name="My Trip!")
    b = parse_request(three_scene_request(), name="My Trip!")
    c = parse_request(three_scene_request(seed=8), name="My Trip!")
    assert a.partition_key() == b.partition_key() != c.partition_key()
    assert a.partition_key().startswith("my-trip-")
    check_partition_key(a.partition_key())
    assert parse_request(a.to_dict()) == a  # round trip


def test_bad_json_and_requests_lists() -> None:
    with pytest.raises(RequestError, match="not valid JSON"):
        parse_request_text("{nope")
    with pytest.raises(RequestError, match="empty"):
        parse_request_text("   ")
    many = requests_in_document(
        {"requests": [three_scene_request(), three_scene_request(seed=9)]}, name="batch"
    )
    assert len(many) == 2 and many[0].partition_key() != many[1].partition_key()
    with pytest.raises(RequestError) as info:
        requests_in_document({"requests": [three_scene_request(), {"prompt": ""}]})
    assert [p.field for p in info.value.problems] == ["requests[1].prompt"]


def test_melody_needs_a_melody_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np
    import soundfile as sf

    from musicgen_pipeline.request import RequestError, parse_request

    tune = tmp_path / "tune.wav"
    sf.write(str(tune), np.zeros(3200, dtype=np.float32), 32000)  # the header is checked; decoding in the run
    raw = {"prompt": "flute", "duration": 5, "melody": str(tune)}
    assert parse_request({**raw, "model": "tiny-random-melody"}).melody == str(tune.resolve())
    with pytest.raises(RequestError) as err:
        parse_request({**raw, "model": "tiny-random"})
    (problem,) = err.value.problems
    assert problem.field == "melody" and "tiny-random" in problem.message
    # without a model of its own the request is checked against the default model its entry point
    # passes (MUSICGEN_MODEL: render, the inbox, the schedule and REST resolve it from the settings)
    with pytest.raises(RequestError, match="melody"):
        parse_request(raw, default_model="facebook/musicgen-small")
    assert parse_request(raw, default_model="facebook/musicgen-melody").melody is not None
    monkeypatch.setenv("MUSICGEN_MODEL", "facebook/musicgen-small")
    bad = tmp_path / "inbox-style.json"
    bad.write_text(json.dumps(raw), encoding="utf-8")
    from musicgen_pipeline.inbox import read_requests
    from musicgen_pipeline.settings import get_settings

    with pytest.raises(RequestError, match="melody"):
        read_requests(bad, default_model=get_settings().musicgen_model)


@pytest.mark.parametrize(
    ("channels", "rate", "data", "words"),
    [(8, 32000, None, "has 8 channels"), (1, 1, None, "sample rate 1 Hz"), (1, 0, b"RIFF", "not a readable")],
)
def test_melody_file_is_checked_like_every_audio_input(
    tmp_path: Path, channels: int, rate: int, data: bytes | None, words: str
) -> None:
    import numpy as np
    import soundfile as sf

    from musicgen_pipeline.request import RequestError, parse_request

    tune = tmp_path / "tune.wav"
    if data is None:
        sf.write(str(tune), np.zeros((64, channels), dtype=np.float32), rate, subtype="FLOAT")
    else:
        tune.write_bytes(data)
    with pytest.raises(RequestError) as err:
        parse_request({"prompt": "flute", "duration": 5, "melody": str(tune), "model": "tiny-random-melody"})
    (problem,) = err.value.problems
    assert problem.field == "melody" and words in problem.message
