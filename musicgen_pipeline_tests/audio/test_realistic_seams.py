"""Seams on realistic music (MIDI with drums rendered by fluidsynth + FluidR3_GM), judged against the
same music unjoined: the rhythm measures' null level, phase locking, the time map, the length rule."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pytest

from musicgen_pipeline.audio import seam_level, seam_plan
from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.audio.join import join_segments
from musicgen_pipeline.audio.loudness import integrated_loudness
from musicgen_pipeline.audio.metrics import QualityThresholds, score_transition
from musicgen_pipeline.audio.rhythm import (
    BeatGrid,
    align_segment,
    analyze_beats,
    octave_ratio,
    track_beats,
    track_pulse,
)
from musicgen_pipeline.audio.seam_level import hold_level_gain
from musicgen_pipeline.audio.seam_options import TransitionOptions
from musicgen_pipeline.audio.seam_plan import plan_transition
from musicgen_pipeline.audio.seam_render import render_transition
from musicgen_pipeline.audio.seam_rhythm import (
    SeamRhythm,
    felt_pulse,
    null_seam_rhythm,
    rhythm_at,
    seam_rhythm,
)
from musicgen_pipeline.audio.timeline import assemble
from musicgen_pipeline.audio.window import Window
from musicgen_pipeline.settings import get_settings
from musicgen_pipeline_tests.realistic_music import PAIRS, RealisticSong

Render = Callable[[RealisticSong], Audio]
# Three pairs of the eight (the benchmark joins all): a slow half-time ballad, a pop groove whose
# second clip is 8 % faster, and two performers who drift in tempo (+4 %, -3 %).
JOINED = ("76-82 ballad", "92-100 pop", "100-96 drifting")


@pytest.fixture(scope="module")
def null(render: Render) -> list[SeamRhythm]:
    """Both rhythm measures at pseudo-seams (every 2 s) of the unjoined clips of the JOINED pairs."""
    return [
        r
        for name in JOINED
        for song in PAIRS[name]
        for r in null_seam_rhythm(render(song), 2.0, hop_seconds=2.0)
    ]


@pytest.fixture(scope="module")
def null_limit(null: list[SeamRhythm]) -> float:
    """The music's own inter-beat deviation at pseudo-seams of the unjoined clips: 95th percentile."""
    values = [r.inter_beat_deviation for r in null if r.inter_beat_deviation is not None]
    assert len(values) > 30
    return float(np.percentile(values, 95))


@pytest.fixture(scope="module")
def render(render_song: Render) -> Render:
    return render_song


def test_clips_have_the_scores_tempo_and_beats(render: Render) -> None:
    song = PAIRS["92-100 pop"][0]
    clip = render(song)
    assert clip.channels == 2 and abs(clip.duration - song.seconds) < 1e-3
    grid = analyze_beats(clip)
    assert abs(octave_ratio(grid.bpm, song.bpm)[0] - 1) < 0.005
    truth = song.beat_times()
    errors = np.array([np.min(np.abs(truth - t)) for t in grid.beat_times])
    # Beats on the attacks (within the performers' 3 ms timing and the soundfont's attack times).
    assert np.median(errors) < 0.008


def test_null_level_of_unjoined_music(render: Render, null_limit: float) -> None:
    # Unjoined music reads as continuous: a small spread (performers' 3 ms timing, soundfont attacks,
    # the tracker's own error: 95th percentile ~4-7 % here), no phase jump.
    assert 0.003 < null_limit < 0.08
    phases = [
        r.phase_error
        for song in PAIRS["92-100 pop"]
        for r in null_seam_rhythm(render(song), 2.0, hop_seconds=2.0)
        if r.phase_error is not None
    ]
    assert np.percentile(phases, 95) < 0.04


def test_default_rhythm_limits_sit_outside_the_musics_own_spread(
    null: list[SeamRhythm], null_limit: float
) -> None:
    # A default inside the spread of unjoined music fails seams the music itself would make, and the
    # quality loop regenerates them. The defaults were set from the null of all 16 clips (p95 5.93 %
    # + 1 point; phase p95 0.021, issue 12's 0.05; `seam_rhythm.INTER_BEAT_DEVIATION_MAX`); here the
    # null of this module's clips (p95 3.4 % every 2 s, ~0.02 beat: the steadier 6 of the 16, 2.5
    # points under all 16; the slow, dance and drive clips read up to 7.8 %) checks they still sit above
    # the music's own 95th percentile and close enough to it that a stumble still fails.
    defaults = QualityThresholds()
    settings = get_settings(environ={})
    assert settings.inter_beat_deviation_max == defaults.inter_beat_deviation_max
    assert settings.phase_error_max == defaults.phase_error_max
    assert null_limit <= defaults.inter_beat_deviation_max <= null_limit + 0.04
    ibi = np.array([r.inter_beat_deviation for r in null if r.inter_beat_deviation is not None])
    assert np.mean(ibi > defaults.inter_beat_deviation_max) <= 0.05
    phases = [r.phase_error for r in null if r.phase_error is not None]
    assert len(phases) > 30
    assert float(np.percentile(phases, 95)) <= defaults.phase_error_max <= 0.05


def test_a_stumble_is_measured_and_fails_the_seam(render: Render) -> None:
    clip = render(PAIRS["92-100 pop"][1])
    grid = analyze_beats(clip)
    sr = clip.sample_rate
    period = 60.0 / grid.bpm
    # The clip joined to itself one bar later, but 0.2 beat late: a stumble a drummer hears.
    at = float(grid.beat_times[np.searchsorted(grid.beat_times, 12.0)])
    a = Audio(clip.samples[:, : round((at + 2.0) * sr)], sr)
    b_start = at + 4 * period + 0.2 * period
    b = Audio(clip.samples[:, round(b_start * sr) :], sr)
    off = TransitionOptions(beat_align=False, tempo_match=False, stem_aware=False, zero_cross=False)
    plan = plan_transition(a, None, b, None, off)
    track, seams = assemble([a, b], [plan], [render_transition(plan, a, b)])
    scores = score_transition(track, seams[0].start, seams[0].stop)
    assert scores.phase_error is not None and 0.12 < scores.phase_error < 0.28
    assert scores.inter_beat_deviation is not None and scores.inter_beat_deviation > 0.1
    assert any("phase error" in f for f in scores.failures)
    assert scores.rhythm_pulse == "tracked" and scores.to_dict()["rhythm_pulse"] == "tracked"
    assert not scores.passed


def test_a_half_time_groove_is_measured_on_its_felt_beats(render: Render) -> None:
    # 76 BPM half-time: tracked at 152, every other tracked beat an off-beat with only a hi-hat. The
    # felt pulse is the score's beat (kick, snare, bass), and on it the music reads steadier.
    song = PAIRS["70-76 slow"][1]
    clip = render(song)
    beats, _ = track_pulse(clip)
    assert abs(60.0 / np.median(np.diff(beats)) / (2 * song.bpm) - 1) < 0.01
    strong = felt_pulse(clip, beats, 12.0, 14.0)
    assert strong is not None
    score = song.beat_times()
    off = np.array([np.min(np.abs(score - t)) for t in strong[(strong > 2) & (strong < 24)]])
    assert np.median(off) < 0.01  # on the score's beats, not the eighths between them (~0.39 s away)
    felt = [r for r in null_seam_rhythm(clip, 2.0, hop_seconds=2.0) if r.felt]
    assert len(felt) >= 5 and all(abs(r.period * song.bpm / 60.0 - 1) < 0.01 for r in felt)


def test_a_jump_by_half_a_felt_beat_fails_the_seam(render: Render) -> None:
    # The half-time clip joined to itself two bars later plus half a felt beat: off-beats land where the
    # strong beats were, the backbeat turns around. Every tracked eighth still meets an eighth, so the
    # tracked grid reads a clean seam; at the felt pulse it reads the jump.
    song = PAIRS["70-76 slow"][1]
    clip = render(song)
    sr = clip.sample_rate
    felt = 60.0 / song.bpm
    score = song.beat_times()
    at = float(score[np.searchsorted(score, 12.0)])
    a = Audio(clip.samples[:, : round((at + 2.0) * sr)], sr)
    b = Audio(clip.samples[:, round((at + 8.5 * felt) * sr) :], sr)
    off = TransitionOptions(beat_align=False, tempo_match=False, stem_aware=False, zero_cross=False)
    plan = plan_transition(a, None, b, None, off)
    track, seams = assemble([a, b], [plan], [render_transition(plan, a, b)])
    seam = seams[0]
    beats, _ = track_pulse(Audio(track.samples[:, seam.start - 8 * sr : seam.stop + 8 * sr], sr))
    tracked = rhythm_at(beats + seam.start / sr - 8, seam.start / sr, seam.stop / sr)
    assert tracked.phase_error is not None and tracked.phase_error < 0.05
    scores = score_transition(track, seam.start, seam.stop)
    assert scores.phase_error is not None and scores.phase_error > 0.4
    assert scores.inter_beat_deviation is not None and scores.inter_beat_deviation > 0.3
    assert scores.rhythm_pulse == "felt"
    assert any("phase error" in f and "felt pulse" in f for f in scores.failures)
    assert not scores.passed


def test_phase_lock_corrects_a_grid_that_is_off(render: Render) -> None:
    song = PAIRS["120-112 rock"][1]  # 112 BPM, no drift: the score's beats are exactly periodic
    clip = render(song)
    sr = clip.sample_rate
    # The clip joined to itself 12 s later: the two sides' beats coincide when the offset between the
    # material of prev's and nxt's overlap is a whole number of the score's beats.
    a = Audio(clip.samples[:, : 14 * sr], sr)
    b = Audio(clip.samples[:, 12 * sr :], sr)
    ga, gb = analyze_beats(a), analyze_beats(b)
    period = 60.0 / song.bpm

    def misalignment(plan_start: int, next_start: int) -> float:
        offset = (plan_start - next_start - 12 * sr) / sr
        return abs(offset - round(offset / period) * period)

    starts = []
    for error in (0.0, 0.022, -0.015):  # nxt's grid exact, 22 ms late, 15 ms early
        grid = BeatGrid(gb.bpm, gb.beat_times + error, gb.duration)
        unlocked = plan_transition(a, ga, b, grid, TransitionOptions(zero_cross=False, phase_lock=False))
        locked = plan_transition(a, ga, b, grid, TransitionOptions(zero_cross=False))
        if error:
            assert misalignment(unlocked.prev_start, unlocked.next_start) > abs(error) - 0.01
        # Locked on the onsets: within a few ms of the score's grid whatever the grid said.
        assert misalignment(locked.prev_start, locked.next_start) < 0.004
        starts.append(locked.next_start)
    assert max(starts) - min(starts) <= 0.001 * sr


def test_half_time_grooves_read_at_double_tempo_meet_beat_on_beat(render: Render) -> None:
    # 70 and 76 BPM half-time grooves: both read at 140/152 (the tracker's beats are their eighths:
    # kick, snare and bass on the quarters, a soft hi-hat between). The seam must put quarter on
    # quarter; an eighth on a quarter moves the backbeat by half a beat, which a tracker at the eighth
    # level cannot see (every eighth still meets an eighth). Judged against the scores' own beats.
    sa, sb = PAIRS["70-76 slow"]
    a, b = render(sa), render(sb)
    ga, gb = analyze_beats(a), analyze_beats(b)
    assert abs(ga.bpm / (2 * sa.bpm) - 1) < 0.01 and abs(gb.bpm / (2 * sb.bpm) - 1) < 0.01
    b2, gb2 = align_segment(b, gb, ga.bpm, time_map=True)
    rate = octave_ratio(gb.bpm, ga.bpm)[0]
    plan = plan_transition(a, ga, b2, gb2, TransitionOptions(stem_aware=False))
    sr = a.sample_rate
    # nxt's score beats in the joined track's time (the stretch is even: b does not drift).
    centre = (plan.prev_start + plan.overlap_frames / 2) / sr
    theirs = (plan.prev_start - plan.next_start) / sr + sb.beat_times() / rate
    ours = sa.beat_times()

    def phase(beats: np.ndarray) -> float:
        i = int(np.searchsorted(beats, centre))
        return (centre - beats[i - 1]) / (beats[i] - beats[i - 1])

    offset = (phase(theirs) - phase(ours) + 0.5) % 1.0 - 0.5
    assert abs(offset) < 0.03, f"nxt's quarters are {offset:+.3f} of a quarter off prev's"


def test_time_map_takes_the_drift_out(render: Render) -> None:
    song = PAIRS["100-96 drifting"][0]  # 100 -> 104 BPM over 32 s
    clip = render(song)
    grid = analyze_beats(clip)

    def tempo_at_ends(audio: Audio) -> tuple[float, float]:
        beats = track_beats(audio)
        head, tail = np.diff(beats[beats < 8.0]), np.diff(beats[beats > audio.duration - 8.0])
        return 60.0 / float(np.median(head)), 60.0 / float(np.median(tail))

    plain, _ = align_segment(clip, grid, 100.0)
    mapped, mapped_grid = align_segment(clip, grid, 100.0, time_map=True)
    p0, p1 = tempo_at_ends(plain)
    m0, m1 = tempo_at_ends(mapped)
    assert abs(p1 / p0 - 1) > 0.025  # the average-rate stretch keeps the drift
    assert abs(m1 / m0 - 1) < 0.01 and abs(m0 / 100.0 - 1) < 0.01
    assert abs(mapped_grid.bpm - 100.0) < 0.5


@pytest.mark.parametrize("name", JOINED)
def test_seams_are_within_the_musics_own_spread(render: Render, null_limit: float, name: str) -> None:
    a, b = (render(song) for song in PAIRS[name])
    result = join_segments([a, b], TransitionOptions(stem_aware=False))
    seam = result.transitions[0]
    sr = result.audio.sample_rate
    start = round(seam.overlap_start_time * sr)
    rhythm = seam_rhythm(result.audio, Window(start, start + seam.plan.overlap_frames))
    assert rhythm.inter_beat_deviation is not None and rhythm.phase_error is not None
    assert rhythm.inter_beat_deviation <= null_limit + 0.01, rhythm
    assert rhythm.phase_error < 0.05, rhythm
    assert seam.scores.inter_beat_deviation == pytest.approx(rhythm.inter_beat_deviation)
    # The joined length follows the stated rule, to the frame (the report rounds seconds to 0.1 ms).
    rule = result.to_dict()["length_rule"]
    assert abs(rule["duration"] - result.audio.duration) < 0.5e-4 + 1.5 / sr


def _loudness_lu(window: np.ndarray, sr: int) -> float:
    """A (channels, frames) window's BS.1770 loudness (`integrated_loudness`), LU."""
    return integrated_loudness(Audio(window, sr))


def _mono_db(window: np.ndarray, sr: int) -> float:
    """A (channels, frames) window's mono-sum mean power, dB."""
    return float(10 * np.log10(np.mean(window.mean(axis=0).astype(np.float64) ** 2)))


def _seam_dip(track: Audio, seam: Window, level: Callable[[np.ndarray, int], float] = _loudness_lu) -> float:
    """The seam's loudness dip on `level` (default BS.1770, LU; `_mono_db`: the mono sum, dB) of 400 ms
    windows 50 ms apart: the quietest window of the overlap below the median window of the 3 s either
    side (the measure of `benchmarks/realistic_seams.py`)."""
    sr = track.sample_rate
    win, hop = round(0.4 * sr), round(0.05 * sr)

    def levels(lo: int, hi: int) -> np.ndarray:
        starts = range(max(0, lo), min(track.frames, hi) - win + 1, hop)
        return np.array([level(track.samples[:, s : s + win], sr) for s in starts])

    around = np.concatenate([levels(seam.start - 3 * sr, seam.start), levels(seam.stop, seam.stop + 3 * sr)])
    return float(np.median(around) - levels(seam.start, seam.stop).min())


def test_bar_position_keeps_the_seams_level(render: Render) -> None:
    # Two performers drifting in tempo (+4 %, -3 %), time-mapped: which beats meet decides which stretch
    # of each clip the overlap covers, and the candidates' dips range over 0.1-2 LU here. Following
    # onset-pattern scores that barely agree (0.35 against 0.19-0.26 for the others) put the seam on a
    # 1.5 LU dip, more than the seam before phase locking (prev's last beat, nxt's first: 1.4 LU).
    # The level decides among such positions: none may dip more than that seam, and this one keeps
    # within 1 LU of the two sides (unjoined stretches of these clips dip 2 dB median).
    a, b = (render(song) for song in PAIRS["100-96 drifting"])
    ga, gb = analyze_beats(a), analyze_beats(b)
    b, gb = align_segment(b, gb, ga.bpm, max_stretch=0.25, time_map=True)
    # The time map keeps a beat tracked before the clip's start outside it (it was pinned to 0.0, a
    # phantom first beat 0.42 s before the next, which the planner took as nxt's first beat).
    inside = gb.beat_times[gb.beat_times >= 0]
    assert np.all(np.abs(np.diff(inside) * gb.bpm / 60.0 - 1.0) < 0.1), inside[:4]
    dips = {}
    for lock in (True, False):
        plan = plan_transition(a, ga, b, gb, TransitionOptions(stem_aware=False, phase_lock=lock))
        track, seams = assemble([a, b], [plan], [render_transition(plan, a, b)])
        dips[lock] = _seam_dip(track, seams[0])
    assert dips[True] <= dips[False] + 0.25, dips
    assert dips[True] < 1.0, dips


def test_a_quieter_clip_glides_in_at_the_first_ones_level(render: Render) -> None:
    # The rock pair's second clip is about 5 dB quieter (K-weighted, 3 s either side of the seam). Each
    # clip at its own level, the track falls by that at the seam: a 1 LU dip, and 4 LU down right after.
    # Glided in at the first clip's level and held through the overlap, the seam keeps the level.
    a, b = (render(song) for song in PAIRS["120-112 rock"])
    out = {}
    for keep in (True, False):
        options = TransitionOptions(
            stem_aware=False, hold_level=not keep, level_glide_seconds=0.0 if keep else 8.0
        )
        result = join_segments([a, b], options)
        seam = result.transitions[0]
        sr = result.audio.sample_rate
        start = round(seam.overlap_start_time * sr)
        window = Window(start, start + seam.plan.overlap_frames)
        before = integrated_loudness(Audio(result.audio.samples[:, start - 3 * sr : start], sr))
        after = integrated_loudness(Audio(result.audio.samples[:, window.stop : window.stop + 3 * sr], sr))
        out[keep] = (seam.level_step_db, _seam_dip(result.audio, window), after - before)
    assert out[True][0] == 0.0 and out[True][1] > 0.8 and out[True][2] < -3.0, out
    assert out[False][0] > 4.0 and out[False][1] < 0.3 and out[False][2] > -1.5, out


def test_the_hold_measures_again_what_it_lifted(render: Render, monkeypatch: pytest.MonkeyPatch) -> None:
    # The pop pair: a lift read once off the overlap's 400 ms powers falls short where it changes within
    # a window (the lifted window's power is the mean of gain^2 x power): 1.0 dB of mono-sum dip left.
    # Measured again on the lifted overlap (`seam_level.HOLD_PASSES`), 0.5 dB: under the music's own.
    a, b = (render(song) for song in PAIRS["92-100 pop"])
    dips = {}
    for passes in (1, seam_level.HOLD_PASSES):
        monkeypatch.setattr(seam_level, "hold_level_gain", partial(hold_level_gain, passes=passes))
        result = join_segments([a, b], TransitionOptions(stem_aware=False))
        sr, start = result.audio.sample_rate, result.transitions[0].overlap_start_time
        seam = Window(round(start * sr), round(start * sr) + result.transitions[0].plan.overlap_frames)
        dips[passes] = _seam_dip(result.audio, seam, _mono_db)
    assert dips[1] > 0.8 and dips[seam_level.HOLD_PASSES] < dips[1] - 0.3, dips


def test_the_bar_position_leaves_no_hole_the_hold_cannot_fill(
    render: Render, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dance pair: both clips have quiet bars (10-14 dB under their median, K-weighted). Chosen by
    # the unheld crossfade's mono-sum dip, the seam put one of each mid-overlap: 6 dB under the sides,
    # more than the hold may lift (2.2 LU left in the track). The held crossfade's dip
    # (`seam_level.held_dip`) rules that position out; the one a beat over leaves none (-0.5 LU).
    a, b = (render(song) for song in PAIRS["140-128 dance"])
    out = {}
    for veto in (True, False):
        if not veto:
            monkeypatch.setattr(seam_plan, "HOLE_DB", float("inf"))
        result = join_segments([a, b], TransitionOptions(stem_aware=False))
        seam = result.transitions[0]
        sr = result.audio.sample_rate
        start = round(seam.overlap_start_time * sr)
        out[veto] = (
            seam.plan.prev_start,
            _seam_dip(result.audio, Window(start, start + seam.plan.overlap_frames)),
        )
    assert out[False][1] > 1.5, out
    assert out[True][1] < 0.8 and out[True][0] != out[False][0], out
