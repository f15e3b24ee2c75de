"""The whole transition chain on synthetic songs whose beats, tempi and stems are known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.audio.join import join_segments, linear_crossfade_join, score_seam
from musicgen_pipeline.audio.join_report import JoinResult
from musicgen_pipeline.audio.metrics import QualityThresholds, detect_clicks
from musicgen_pipeline.audio.rhythm import BeatGrid, align_segment, analyze_beats, choose_target_bpm
from musicgen_pipeline.audio.seam_level import level_glides
from musicgen_pipeline.audio.seam_options import TransitionOptions
from musicgen_pipeline.audio.seam_plan import TransitionPlan, plan_transition, stem_windows
from musicgen_pipeline.audio.seam_render import render_transition, with_gain
from musicgen_pipeline.audio.stems import DspStemSplitter, split_window
from musicgen_pipeline.audio.synth import beat_times, synth_song
from musicgen_pipeline.audio.timeline import assemble
from musicgen_pipeline.errors import InputError

SR = 32000
DUR = 14.0


@pytest.fixture(scope="module")
def songs() -> tuple[Audio, Audio]:
    a = synth_song(118, DUR, SR, root="A", seed=1, channels=2)
    b = synth_song(126, DUR, SR, root="A", seed=2, channels=2)
    return a, b


@pytest.fixture(scope="module")
def joined(songs: tuple[Audio, Audio]) -> JoinResult:
    return join_segments(list(songs), TransitionOptions(), splitter=DspStemSplitter())


def test_join_of_118_and_126_bpm_songs_passes_all_thresholds(joined: JoinResult) -> None:
    assert len(joined.transitions) == 1
    t = joined.transitions[0]
    s = t.scores
    assert s.mfcc_similarity > 0.7
    assert s.spectral_flux < 100
    assert s.chroma_correlation > 0.5
    assert s.energy_ratio < 2.0
    assert t.passed and joined.passed, s.failures
    assert t.beat_aligned and t.stem_aware
    assert joined.target_bpm == pytest.approx(118, rel=0.01)
    assert joined.segments[1].bpm == pytest.approx(126, rel=0.01)
    assert joined.segments[1].aligned_bpm == pytest.approx(joined.target_bpm)
    assert t.bpm_before == pytest.approx(t.bpm_after)


def test_no_clicks_anywhere_in_the_joined_track(joined: JoinResult) -> None:
    assert joined.transitions[0].scores.clicks == ()
    assert detect_clicks(joined.audio) == []


def test_bass_swap_lands_on_a_beat_of_both_sides(joined: JoinResult) -> None:
    t = joined.transitions[0]
    assert t.bass_swap_time is not None and t.plan.bass_swap_on_beat
    # prev is unchanged and starts the track: its true beats are the synth's.
    prev_beats = beat_times(118, DUR)
    assert np.min(np.abs(prev_beats - t.bass_swap_time)) < 0.010
    # next was stretched by `rate`; its true beats move to k * period / rate, shifted by the plan.
    rate = joined.segments[1].stretch_rate
    next_beats = beat_times(126, DUR) / rate - t.plan.next_start / SR + t.overlap_start_time
    assert np.min(np.abs(next_beats - t.bass_swap_time)) < 0.010
    # And it is near the middle of the overlap, within one beat.
    mid = t.overlap_start_time + t.overlap_seconds / 2
    assert abs(t.bass_swap_time - mid) <= 60 / 118 / 2 + 0.01


def test_beats_coincide_through_the_overlap(joined: JoinResult) -> None:
    t = joined.transitions[0]
    rate = joined.segments[1].stretch_rate
    prev_beats = beat_times(118, DUR)
    next_beats = beat_times(126, DUR) / rate - t.plan.next_start / SR + t.overlap_start_time
    inside = prev_beats[
        (prev_beats >= t.overlap_start_time) & (prev_beats <= t.overlap_start_time + t.overlap_seconds)
    ]
    assert inside.size >= 3
    for beat in inside:
        assert np.min(np.abs(next_beats - beat)) < 0.010


def test_the_pieces_compose_to_join_segments(songs: tuple[Audio, Audio], joined: JoinResult) -> None:
    """The granular API the pipeline uses gives exactly what join_segments gives."""
    a, b = songs
    options = TransitionOptions()
    grids = [analyze_beats(a), analyze_beats(b)]
    target = choose_target_bpm(grids)
    aligned = [align_segment(seg, g, target) for seg, g in zip((a, b), grids, strict=True)]
    (pa, pg), (na, ng) = aligned
    plan = plan_transition(pa, pg, na, ng, options)
    (p0, p1), (n0, n1) = stem_windows(plan)
    assert (p1 - p0) == (n1 - n0) == plan.overlap_frames
    splitter = DspStemSplitter()
    prev_stems = split_window(splitter, pa, p0, p1, context=SR)
    next_stems = split_window(splitter, na, n0, n1, context=SR)
    # Stems of each side sum back to that side's mix.
    assert np.max(np.abs(sum(prev_stems.values()) - pa.samples[:, p0:p1])) < 1e-4
    assert np.max(np.abs(sum(next_stems.values()) - na.samples[:, n0:n1])) < 1e-4
    glides = level_glides([pa.samples, na.samples], [plan], SR, options.level_glide_seconds)
    assert glides[0] is None and glides[1] is not None  # the second song arrives at the first's level
    overlap = render_transition(plan, pa, na, prev_stems, next_stems, gains=(glides[0], glides[1]))
    track, seams = assemble([pa, with_gain(na, glides[1])], [plan], [overlap])
    assert seams == [(p0, p0 + plan.overlap_frames)]
    assert track.frames == p0 + plan.overlap_frames + na.frames - n1
    np.testing.assert_array_equal(track.samples, joined.audio.samples)


def test_edges_of_the_overlap_continue_each_side(joined: JoinResult, songs: tuple[Audio, Audio]) -> None:
    a, _ = songs
    plan = joined.transitions[0].plan
    out = joined.audio.samples
    # Before the overlap the track is prev untouched.
    np.testing.assert_array_equal(out[:, : plan.prev_start], a.samples[:, : plan.prev_start])
    # At the start of the overlap it is still (almost exactly) prev: the stems sum to the mix.
    head = out[:, plan.prev_start : plan.prev_start + 8]
    np.testing.assert_allclose(head, a.samples[:, plan.prev_start : plan.prev_start + 8], atol=2e-3)


def test_plan_is_plain_json_data(joined: JoinResult) -> None:
    plan = joined.transitions[0].plan
    data = json.loads(json.dumps(plan.to_dict()))
    assert TransitionPlan.from_dict(data) == plan
    report = json.loads(json.dumps(joined.to_dict()))
    t = report["transitions"][0]
    for key in (
        "boundary_time",
        "bpm_before",
        "bpm_after",
        "mfcc_similarity",
        "spectral_flux",
        "chroma_correlation",
        "energy_ratio",
        "passed",
    ):
        assert key in t
    assert report["duration"] == pytest.approx(joined.audio.duration, abs=1e-3)


def test_whole_segment_stems_and_window_stems_give_the_same_seam(songs: tuple[Audio, Audio]) -> None:
    a, b = songs
    ga, gb = analyze_beats(a), analyze_beats(b)
    plan = plan_transition(a, ga, b, gb, TransitionOptions(crossfade_seconds=1.0))
    _, sa = synth_song(118, DUR, SR, root="A", seed=1, channels=2, stems=True)
    _, sb = synth_song(126, DUR, SR, root="A", seed=2, channels=2, stems=True)
    whole = render_transition(plan, a, b, sa, sb)
    (p0, p1), (n0, n1) = stem_windows(plan)
    window = render_transition(
        plan, a, b, {k: v[:, p0:p1] for k, v in sa.items()}, {k: v[:, n0:n1] for k, v in sb.items()}
    )
    np.testing.assert_allclose(whole.samples, window.samples, atol=1e-6)
    with pytest.raises(ValueError, match="frames"):
        render_transition(plan, a, b, {k: v[:, :100] for k, v in sa.items()}, sb)


def test_three_segments_mixed_formats() -> None:
    a = synth_song(120, 8.0, SR, seed=3, channels=2)
    b = synth_song(120, 8.0, 44100, seed=4, channels=1)  # other rate, mono
    c = synth_song(124, 8.0, SR, seed=5, channels=2)
    result = join_segments([a, b, c], TransitionOptions(crossfade_seconds=1.0), splitter=DspStemSplitter())
    assert result.audio.sample_rate == SR and result.audio.channels == 2
    assert len(result.transitions) == 2
    assert result.transitions[0].boundary_time < result.transitions[1].boundary_time
    assert result.audio.duration == pytest.approx(24.0 - 2 * 1.0 - 0.3 * 2, abs=1.5)
    assert detect_clicks(result.audio) == []


def test_plain_options_and_one_segment(songs: tuple[Audio, Audio]) -> None:
    a, b = songs
    options = TransitionOptions(beat_align=False, tempo_match=False, stem_aware=False, zero_cross=False)
    result = join_segments([a, b], options)
    plan = result.transitions[0].plan
    assert plan.prev_start == a.frames - 2 * SR and plan.next_start == 0 and plan.bass_swap is None
    assert result.audio.frames == a.frames + b.frames - 2 * SR
    assert result.segments[1].stretch_rate == 1.0 and result.stem_source == "none"
    # The same seam as the naive linear crossfade's geometry, with equal-power gains.
    naive = linear_crossfade_join(a, b, 2.0)
    assert naive.frames == result.audio.frames
    single = join_segments([a])
    assert single.transitions == [] and single.audio.frames == a.frames


def test_overlap_longer_than_a_segment_is_an_input_error(songs: tuple[Audio, Audio]) -> None:
    a, b = songs
    short = a.slice_seconds(0, 1.5)
    with pytest.raises(InputError, match="longer than the next segment"):
        join_segments([a, short], TransitionOptions(crossfade_seconds=2.0))
    middle = a.slice_seconds(0, 3.0)
    with pytest.raises(InputError, match="too short for its two crossfades"):
        join_segments([a, middle, b], TransitionOptions(crossfade_seconds=2.0, beat_align=False))
    with pytest.raises(InputError, match="crossfade_seconds"):
        TransitionOptions(crossfade_seconds=-1)
    with pytest.raises(InputError, match="NaN"):
        join_segments([a, Audio(np.full((2, SR * 4), np.nan), SR)])


def test_score_seam_previews_the_join(songs: tuple[Audio, Audio], joined: JoinResult) -> None:
    a, b = songs
    preview = score_seam(a, b)
    full = joined.transitions[0].scores
    assert preview.passed
    assert preview.mfcc_similarity == pytest.approx(full.mfcc_similarity, abs=0.05)
    assert preview.energy_ratio == pytest.approx(full.energy_ratio, rel=0.1)
    # A seam into silence-and-noise of another key fails, with reasons.
    rng = np.random.default_rng(0)
    harsh = Audio(rng.standard_normal((2, 10 * SR)).astype(np.float32) * 0.02, SR)
    bad = score_seam(a, harsh, thresholds=QualityThresholds())
    assert not bad.passed and bad.failures


def test_given_grids_skip_analysis(songs: tuple[Audio, Audio]) -> None:
    a, b = songs
    grids = [BeatGrid(118.0, beat_times(118, DUR), DUR), BeatGrid(126.0, beat_times(126, DUR), DUR)]
    result = join_segments([a, b], TransitionOptions(stem_aware=False), grids=grids)
    assert result.timings["beats"] < 0.05
    assert result.segments[1].stretch_rate == pytest.approx(118 / 126)
    assert result.transitions[0].passed


@pytest.mark.parametrize(
    ("crossfade_seconds", "stems", "curve", "zero_cross"),
    [(0.25, True, "equal_power", True), (1.0, False, "linear", False), (3.0, True, "adaptive", True)],
)
def test_no_clicks_at_seams_across_settings(
    crossfade_seconds: float, stems: bool, curve: str, zero_cross: bool
) -> None:
    a = synth_song(96, 9.0, SR, root="D", seed=31, channels=2)
    b = synth_song(104, 9.0, SR, root="D", seed=32, channels=1)
    options = TransitionOptions(
        crossfade_seconds=crossfade_seconds, stem_aware=stems, curve=curve, zero_cross=zero_cross
    )
    result = join_segments([a, b], options, splitter=DspStemSplitter() if stems else None)
    t = result.transitions[0]
    assert t.scores.clicks == ()
    s0 = round(t.overlap_start_time * SR)
    s1 = s0 + t.plan.overlap_frames
    around = Audio(result.audio.samples[:, max(0, s0 - SR) : s1 + SR], SR)
    assert detect_clicks(around) == []
