"""Seams aimed at scene boundaries: `plan_transition(prev_target_start=...)`, `plan_seams`,
`scene_generation_seconds`, `fit_to_length`, on synthetic songs with known beats."""

from __future__ import annotations

import numpy as np
import pytest

from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.audio.join import join_segments
from musicgen_pipeline.audio.rhythm import BeatGrid, analyze_beats
from musicgen_pipeline.audio.seam_options import TransitionOptions
from musicgen_pipeline.audio.seam_plan import plan_transition
from musicgen_pipeline.audio.seam_render import render_transition
from musicgen_pipeline.audio.synth import synth_song
from musicgen_pipeline.audio.timeline import (
    assemble,
    fit_to_length,
    plan_seams,
    scene_boundaries,
    scene_generation_seconds,
)

SR = 32000


@pytest.fixture(scope="module")
def songs() -> tuple[Audio, Audio]:
    return (
        synth_song(120, 12.0, SR, root="A", seed=3, channels=2),
        synth_song(120, 12.0, SR, root="A", seed=4, channels=2),
    )


@pytest.fixture(scope="module")
def grids(songs: tuple[Audio, Audio]) -> tuple[BeatGrid, BeatGrid]:
    return analyze_beats(songs[0]), analyze_beats(songs[1])


@pytest.mark.parametrize("target_s", [3.0, 5.26, 7.9])
def test_aligned_target_lands_on_the_nearest_prev_beat_within_the_window(songs, grids, target_s) -> None:
    options = TransitionOptions(crossfade_seconds=1.0, tempo_match=False, stem_aware=False, zero_cross=False)
    target = round(target_s * SR)
    plan = plan_transition(songs[0], grids[0], songs[1], grids[1], options, prev_target_start=target)
    beats = np.round(grids[0].beat_times * SR).astype(int)
    assert plan.beat_aligned
    assert plan.prev_start in set(beats.tolist())
    nearest = beats[np.argmin(np.abs(beats - target))]
    assert plan.prev_start == nearest
    assert abs(plan.prev_start - target) <= 0.25 * SR + 1  # half a beat at 120 BPM, well inside 1.5 s
    # the overlap is nowhere near prev's tail any more (the old behaviour)
    assert plan.prev_stop < songs[0].frames - 3 * SR


def test_unaligned_target_is_exact_and_clamped(songs) -> None:
    options = TransitionOptions(crossfade_seconds=1.0, beat_align=False, tempo_match=False, stem_aware=False)
    plan = plan_transition(songs[0], None, songs[1], None, options, prev_target_start=round(4.2 * SR))
    assert abs(plan.prev_start - round(4.2 * SR)) <= round(0.003 * SR)  # zero-crossing nudge only
    late = plan_transition(songs[0], None, songs[1], None, options, prev_target_start=10**9)
    assert late.prev_stop <= songs[0].frames
    assert late.prev_start >= songs[0].frames - SR - round(0.003 * SR)
    early = plan_transition(songs[0], None, songs[1], None, options, prev_target_start=-500)
    assert 0 <= early.prev_start <= round(0.003 * SR)


def test_no_target_keeps_the_tail_behaviour(songs, grids) -> None:
    options = TransitionOptions(crossfade_seconds=1.0, tempo_match=False, stem_aware=False)
    plan = plan_transition(songs[0], grids[0], songs[1], grids[1], options)
    assert plan.prev_stop > songs[0].frames - round(1.5 * SR) - 1


def test_generation_seconds_cover_both_overlaps_and_slack() -> None:
    opts = TransitionOptions(crossfade_seconds=2.0)
    assert scene_generation_seconds([20, 25, 15], opts) == pytest.approx([22.5, 35.625, 21.875])
    plain = TransitionOptions(crossfade_seconds=2.0, beat_align=False, tempo_match=False)
    assert scene_generation_seconds([20, 25, 15], plain) == pytest.approx([21.0, 27.0, 16.0])
    assert scene_generation_seconds([30], opts) == [30.0]
    # the stretch margin follows the allowed stretch: a scene sped up by the limit still covers its share
    tight = TransitionOptions(crossfade_seconds=2.0, max_stretch=0.1)
    assert scene_generation_seconds([20, 25], tight) == pytest.approx([22.5, (25 + 1.0 + 1.5) * 1.1])
    need = 25 + 1.0 + 1.5
    assert scene_generation_seconds([20, 25, 15], opts)[1] / (1 + opts.max_stretch) >= need + 1.0 - 1e-9
    assert scene_boundaries([20, 25, 15]) == [20.0, 45.0]


@pytest.mark.parametrize(("beat", "tempo"), [(True, True), (False, False), (True, False)])
def test_seams_centred_on_boundaries_and_track_fits_the_total(beat: bool, tempo: bool) -> None:
    durations = [6.0, 7.0, 5.0]
    options = TransitionOptions(crossfade_seconds=1.0, beat_align=beat, tempo_match=tempo, stem_aware=False)
    lengths = scene_generation_seconds(durations, options)
    segs = [
        synth_song(bpm, seconds, SR, root="A", seed=10 + i, channels=2)
        for i, (bpm, seconds) in enumerate(zip((120, 112, 126), lengths, strict=True))
    ]
    bounds = scene_boundaries(durations)
    result = join_segments(segs, options, boundaries=bounds)
    search = options.beat_search_seconds if beat else 0.004
    for t, boundary in zip(result.transitions, bounds, strict=True):
        assert abs(t.boundary_time - boundary) <= search, (t.boundary_time, boundary)
    total = round(sum(durations) * SR)
    assert result.audio.frames >= total
    fitted = fit_to_length(result.audio, total)
    assert fitted.frames == total


def test_plan_seams_offsets_map_overlaps_into_the_track(songs, grids) -> None:
    options = TransitionOptions(crossfade_seconds=1.0, tempo_match=False, stem_aware=False)
    plans, offsets = plan_seams(list(songs), list(grids), options, [6.0])
    overlaps = [render_transition(p, songs[0], songs[1]) for p in plans]
    _, seams = assemble(list(songs), plans, overlaps)
    assert seams[0][0] == offsets[0] + plans[0].prev_start == offsets[1] + plans[0].next_start
    with pytest.raises(ValueError):
        plan_seams(list(songs), list(grids), options, [1.0, 2.0])


def test_fit_to_length_fades_out_instead_of_cutting() -> None:
    tone = np.sin(2 * np.pi * 220 * np.arange(8 * SR) / SR).astype(np.float32)
    audio = Audio(np.stack([tone, tone]), SR)
    out = fit_to_length(audio, 7 * SR)  # 1.5 s fade (a quarter of 7 s is longer)
    assert out.frames == 7 * SR
    assert np.abs(out.samples[:, -1]).max() < 1e-3  # ends at silence
    assert np.abs(out.samples[:, -round(0.05 * SR) :]).max() < 0.06
    np.testing.assert_array_equal(
        out.samples[:, : 2 * SR], audio.samples[:, : 2 * SR]
    )  # untouched before the fade
    fade = round(1.5 * SR)
    rms_before = np.sqrt(np.mean(out.samples[0, 7 * SR - fade - SR // 2 : 7 * SR - fade] ** 2))
    assert rms_before == pytest.approx(np.sqrt(0.5), rel=0.02)
    rms_fade = np.sqrt(np.mean(out.samples[0, 7 * SR - fade :] ** 2))
    assert rms_fade == pytest.approx(0.5, rel=0.03)  # mean of cos^2 over the fade is 1/2 of the tone's power
    assert fit_to_length(audio, 9 * SR) is audio
