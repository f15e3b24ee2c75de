"""Realistic clips (MIDI rendered with fluidsynth), rendered once per test session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline_tests.realistic_music import RealisticSong, fluidsynth_missing, render_clip


@pytest.fixture(scope="session")
def render_song(tmp_path_factory: pytest.TempPathFactory) -> Callable[[RealisticSong], Audio]:
    problem = fluidsynth_missing()
    if problem:
        pytest.fail(f"cannot render the realistic fixtures: {problem}")
    folder: Path = tmp_path_factory.mktemp("realistic_clips")
    cache: dict[str, Audio] = {}

    def render(song: RealisticSong) -> Audio:
        if song.key not in cache:
            cache[song.key] = render_clip(song, folder)
        return cache[song.key]

    return render
