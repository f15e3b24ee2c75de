"""MAX_TEMPO_STRETCH bounds the tempo change the pipeline applies and, with it, the generation margin."""

from __future__ import annotations

import numpy as np
import pytest

from musicgen_pipeline.audio.rhythm import align_segment, analyze_beats
from musicgen_pipeline.audio.synth import synth_song
from musicgen_pipeline.audio.timeline import scene_generation_seconds
from musicgen_pipeline.quality import transition_options
from musicgen_pipeline.request import parse_request
from musicgen_pipeline.settings import get_settings

REQUEST = {
    "base_prompt": "strings",
    "scenes": [{"mood": "a", "duration": 20}, {"mood": "b", "duration": 25}, {"mood": "c", "duration": 15}],
    "crossfade_duration": 2.0,
}


@pytest.mark.parametrize(("value", "factor"), [(None, 1.25), ("0.08", 1.08), ("0", 1.0)])
def test_margin_follows_the_setting(
    monkeypatch: pytest.MonkeyPatch, value: str | None, factor: float
) -> None:
    if value is None:
        monkeypatch.delenv("MAX_TEMPO_STRETCH", raising=False)
    else:
        monkeypatch.setenv("MAX_TEMPO_STRETCH", value)
    options = transition_options(parse_request(REQUEST), get_settings())
    assert options.max_stretch == pytest.approx(factor - 1.0)
    seconds = scene_generation_seconds([20, 25, 15], options)
    # scene 0 sets the tempo (never stretched); the others carry both crossfade halves, beat slack, margin
    assert seconds[0] == pytest.approx(20 + 1.0 + 1.5)
    assert seconds[1] == pytest.approx((25 + 2.0 + 1.5) * factor, abs=1e-3)
    assert seconds[2] == pytest.approx((15 + 1.0 + 1.5) * factor, abs=1e-3)


def test_a_change_beyond_the_setting_is_not_applied() -> None:
    song = synth_song(118, 8.0, 32000, seed=3)
    grid = analyze_beats(song)
    stretched, _ = align_segment(song, grid, 126.0, max_stretch=0.25)
    kept, kept_grid = align_segment(song, grid, 126.0, max_stretch=0.05)  # 6.8 % > 5 %: left as it is
    assert stretched.frames == pytest.approx(song.frames * 118 / 126, rel=0.01)
    assert kept.frames == song.frames and np.array_equal(kept.samples, song.samples)
    assert kept_grid.bpm == pytest.approx(grid.bpm)
