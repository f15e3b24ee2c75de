"""The `aligned_segments` asset stretches a drifting segment along a time map, as `join` does: its
beats come out on an even grid at the track tempo (an average-rate stretch would keep the drift)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from musicgen_pipeline.artifacts import SceneSegment, SegmentBeats, stored_grid
from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.audio.rhythm import analyze_beats, track_beats
from musicgen_pipeline.audio.synth import click_track
from musicgen_pipeline.defs.assets.aligned_segments import aligned_segments
from musicgen_pipeline.media import read_exact, write_exact
from musicgen_pipeline.request import parse_request
from musicgen_pipeline.resources import SettingsResource

SR = 32000


def _clicks(start_bpm: float, end_bpm: float, seconds: float) -> Audio:
    """A click track whose tempo moves linearly from `start_bpm` to `end_bpm` over `seconds`."""
    click = click_track(120, 0.5, SR).samples[0, : round(0.03 * SR)]
    y = np.zeros(round(seconds * SR))
    t = 0.05
    while t < seconds - 0.1:
        i = round(t * SR)
        y[i : i + click.size] += click[: y.size - i]
        t += 60.0 / (start_bpm + (end_bpm - start_bpm) * t / seconds)
    return Audio(y.astype(np.float32), SR)


def _segment(index: int, path: Path, audio: Audio) -> SceneSegment:
    return SceneSegment(
        index=index,
        path=str(path),
        prompt="clicks",
        seed=index,
        attempt=0,
        regenerations=0,
        exhausted=False,
        scores=None,
        passed=None,
        attempts=(),
        duration=audio.duration,
        scene_seconds=audio.duration,
        sample_rate=SR,
        seconds=0.0,
        real_time_factor=0.0,
        model_id="clicks",
        picture="",
    )


def test_a_drifting_segment_is_stretched_along_its_beats(tmp_path: Path) -> None:
    steady, drifting = _clicks(115, 115, 8.0), _clicks(110, 120, 16.0)  # drifting: 115 on average
    segments, grids = [], []
    for i, audio in enumerate((steady, drifting)):
        path = write_exact(tmp_path / f"scene_{i}.wav", audio)
        segments.append(_segment(i, path, audio))
        grids.append(SegmentBeats(i, stored_grid(analyze_beats(audio))))
    request = parse_request(
        {
            "base_prompt": "clicks",
            "scenes": [{"mood": "a", "duration": 8}, {"mood": "b", "duration": 16}],
            "crossfade_duration": 2.0,
        }
    )
    context = dg.build_asset_context(
        partition_key="clicks", resources={"settings": SettingsResource(data_dir=str(tmp_path))}
    )
    track = aligned_segments(
        context=context, soundtrack_request=request, scene_segments=segments, beat_grids=grids
    )
    out = track.segments[1]
    assert track.target_bpm == pytest.approx(115, rel=0.01)
    # The grid handed on is the even one, and the written audio's beats are where it says.
    assert np.ptp(np.diff(out.grid.beat_times)) < 0.01  # an average-rate stretch: 0.50-0.55 s
    beats = track_beats(read_exact(out.path))
    head, tail = np.median(np.diff(beats[beats < 5.0])), np.median(np.diff(beats[beats > out.duration - 5.0]))
    assert abs(tail / head - 1) < 0.01  # drift taken out (an average-rate stretch keeps ~8 %)
    assert abs(60.0 / head / track.target_bpm - 1) < 0.01


def test_a_one_scene_track_keeps_its_segment_as_generated(tmp_path: Path) -> None:
    # One scene has no seam to line up: a time map would only move its beats and change its length
    # (a drifting 10 s scene came out 9.90 s long, so the track fell short of its requested 10 s).
    drifting = _clicks(110, 120, 10.0)
    path = write_exact(tmp_path / "scene_0.wav", drifting)
    request = parse_request({"base_prompt": "clicks", "scenes": [{"mood": "a", "duration": 10}]})
    context = dg.build_asset_context(
        partition_key="clicks", resources={"settings": SettingsResource(data_dir=str(tmp_path))}
    )
    track = aligned_segments(
        context=context,
        soundtrack_request=request,
        scene_segments=[_segment(0, path, drifting)],
        beat_grids=[SegmentBeats(0, stored_grid(analyze_beats(drifting)))],
    )
    (out,) = track.segments
    assert out.rate == 1.0 and out.grid.bpm == pytest.approx(track.target_bpm)
    assert read_exact(out.path).frames == drifting.frames
