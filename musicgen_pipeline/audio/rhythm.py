"""Tempo and beats (librosa), octave-safe tempo ratios, and tempo matching by time-stretch (rubberband).

A `BeatGrid` is plain data (bpm + beat times in seconds) so it can be stored as JSON metadata.
Tempo octaves: 60 and 120 BPM describe the same pulse at different levels, so every tempo comparison
here is made modulo octaves (`octave_ratio`): matching a 60 BPM segment to 120 BPM stretches it by
1.0, not 2.0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from musicgen_pipeline.audio.io import Audio, resample
from musicgen_pipeline.audio.window import window_means

ANALYSIS_RATE = 22050
HOP = 256  # 11.6 ms at 22.05 kHz
# Preferred tempo range: a detected tempo is moved by octaves (x2, /2) into it when the pulse allows.
PREFERRED_BPM = (78.0, 160.0)
# Do not stretch by more than this fraction (a bigger change sounds worse than a tempo mismatch).
MAX_STRETCH = 0.25


@dataclass(frozen=True)
class BeatGrid:
    """Tempo (BPM) and beat times (seconds from the start of the audio it was measured on)."""

    bpm: float
    beat_times: np.ndarray = field(repr=False)
    duration: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "beat_times", np.asarray(self.beat_times, dtype=np.float64).reshape(-1))

    @property
    def period(self) -> float:
        """Seconds per beat."""
        return 60.0 / self.bpm if self.bpm > 0 else 0.0

    def __len__(self) -> int:
        return int(self.beat_times.size)

    def scaled(self, rate: float) -> BeatGrid:
        """The grid of the same audio played `rate` times faster (tempo x rate, times / rate)."""
        return BeatGrid(self.bpm * rate, self.beat_times / rate, self.duration / rate)

    def at_octave(self, factor: float) -> BeatGrid:
        """The same pulse counted at another level: factor 2 adds a beat between each pair, 0.5 keeps every other."""
        if factor == 1 or len(self) < 2:
            return BeatGrid(self.bpm * factor, self.beat_times, self.duration)
        if factor >= 2:
            k = round(factor)
            b = self.beat_times
            sub = [b[:-1] + (b[1:] - b[:-1]) * j / k for j in range(k)]
            times = np.sort(np.concatenate([*sub, b[-1:]]))
            return BeatGrid(self.bpm * k, times, self.duration)
        k = round(1 / factor)
        return BeatGrid(self.bpm / k, self.beat_times[::k], self.duration)

    def nearest_beat(self, time: float, window: float | None = None) -> float | None:
        """The beat closest to `time` (within `window` seconds when given), else None."""
        if len(self) == 0:
            return None
        i = int(np.argmin(np.abs(self.beat_times - time)))
        beat = float(self.beat_times[i])
        if window is not None and abs(beat - time) > window:
            return None
        return beat

    def beats_between(self, start: float, stop: float) -> np.ndarray:
        return self.beat_times[(self.beat_times >= start) & (self.beat_times < stop)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "bpm": round(float(self.bpm), 3),
            "beat_times": [round(float(t), 4) for t in self.beat_times],
            "duration": round(float(self.duration), 4),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BeatGrid:
        return cls(
            float(data["bpm"]),
            np.asarray(data["beat_times"], dtype=np.float64),
            float(data.get("duration", 0)),
        )


def _onset_tempo(y: np.ndarray, preferred_bpm: tuple[float, float]) -> tuple[np.ndarray, float] | None:
    """The onset envelope (median over mel bands) and its octave-corrected tempo; None without a pulse."""
    import librosa

    if y.size < ANALYSIS_RATE or not np.any(y):
        return None
    onset = librosa.onset.onset_strength(y=y, sr=ANALYSIS_RATE, hop_length=HOP, aggregate=np.median)
    if not np.any(onset > 0):
        return None
    tempo = float(
        np.atleast_1d(librosa.feature.tempo(onset_envelope=onset, sr=ANALYSIS_RATE, hop_length=HOP))[0]
    )
    return onset, _choose_octave(onset, _choose_metrical_level(onset, tempo), preferred_bpm)


# The tempogram can lock onto a pulse 3:2 or 2:3 of the beat (a 140 BPM groove with a push on the "and"
# of 3 reads as ~94 BPM: every 1.5 beats). Octave folding cannot undo that; `_choose_metrical_level`
# compares the candidates' beat-grid salience (`grid_salience`). A slower grid averages fewer beats, so
# its best phase scores higher by chance: the salience ratio (alternative / tempogram's) an alternative
# must exceed is set from the project's realistic fixtures, 8 s windows and whole clips (a wrong faster
# level reaches 0.64, the right one 0.82-1.16; a wrong slower level reaches 1.19).
METRICAL_LEVELS = ((1.5, 0.8), (2.0 / 3.0, 1.25))
# How much of the tempo a grid's period is searched around (the tempogram's bin is coarse).
SALIENCE_PERIOD_SPAN = 0.03
SALIENCE_MAX_PERIODS = 1000


def grid_salience(onset: np.ndarray, bpm: float) -> float:
    """How strongly a beat grid at ~`bpm` (period within +-`SALIENCE_PERIOD_SPAN`, best phase) lands on
    onsets: the mean onset strength at its beats over the envelope's mean. The true beat lands on every
    kick, snare and on-beat hat; a pulse 3:2 or 2:3 of it lands on off-beats half the time."""
    frame_rate = ANALYSIS_RATE / HOP
    mean = float(onset.mean())
    if bpm <= 0 or mean <= 0:
        return 0.0
    base = 60.0 * frame_rate / bpm
    if onset.size < 4 * base:
        return 0.0
    # Periods close enough together that a grid between two of them drifts at most a quarter frame off
    # by the envelope's end (up to `SALIENCE_MAX_PERIODS`: ~48 s of envelope). 25 periods were too
    # coarse: on 16 s, a tempogram 0.7 % off the true 93.3 BPM found no period that kept landing on the
    # kicks, and a soft hi-hat's 3:2 pulse (140) out-scored it.
    steps = min(SALIENCE_MAX_PERIODS, max(25, int(np.ceil(2 * SALIENCE_PERIOD_SPAN * onset.size / 0.25)) + 1))
    periods = np.linspace(base * (1 - SALIENCE_PERIOD_SPAN), base * (1 + SALIENCE_PERIOD_SPAN), steps)
    # Every (period, phase < period) grid's mean onset over its int((size - period) // period) beats,
    # a block of periods at a time.
    counts = ((onset.size - periods) // periods).astype(np.int64)
    beats = np.arange(int(counts.max()))
    phases = np.arange(int(periods.max()))
    best = 0.0
    for lo in range(0, steps, 64):
        block, n = periods[lo : lo + 64], counts[lo : lo + 64]
        idx = np.round(phases[None, :, None] + beats[None, None, :] * block[:, None, None]).astype(np.int64)
        values = onset[np.minimum(idx, onset.size - 1)] * (beats[None, None, :] < n[:, None, None])
        means = values.sum(axis=2) / n[:, None]
        means[phases[None, :] >= block.astype(np.int64)[:, None]] = 0.0
        best = max(best, float(means.max()))
    return best / mean


def _choose_metrical_level(onset: np.ndarray, tempo: float) -> float:
    """`tempo`, or tempo x 3/2 or x 2/3 when a grid there lands on the onsets more strongly than a grid
    at `tempo`, by the margin `METRICAL_LEVELS` sets for that direction (`grid_salience`)."""
    current = grid_salience(onset, tempo)
    if current <= 0:
        return tempo
    for ratio, margin in METRICAL_LEVELS:
        if grid_salience(onset, tempo * ratio) > margin * current:
            return tempo * ratio
    return tempo


def _tracked(onset: np.ndarray, tempo: float) -> np.ndarray:
    import librosa

    _, frames = librosa.beat.beat_track(
        onset_envelope=onset, sr=ANALYSIS_RATE, hop_length=HOP, bpm=tempo, tightness=100, trim=False
    )
    return np.asarray(librosa.frames_to_time(np.asarray(frames), sr=ANALYSIS_RATE, hop_length=HOP))


def _analysis_signal(audio: Audio) -> np.ndarray:
    return resample(audio, ANALYSIS_RATE).mono() if audio.sample_rate != ANALYSIS_RATE else audio.mono()


def analyze_beats(audio: Audio, *, preferred_bpm: tuple[float, float] = PREFERRED_BPM) -> BeatGrid:
    """Tempo and beat times of `audio` (librosa's dynamic-programming tracker), octave-corrected.

    The tempo is refined from the tracked beats (robust line fit of beat time against beat index),
    which is far more precise than the tempogram's bin; the octave is the one whose pulse is in
    `preferred_bpm`, preferring the level that the onset strength actually supports. Beats sit on
    the attacks (`_refine_to_attacks`), the grid is completed at both ends and a stray beat is moved
    to where its neighbours put it (`_regularise`, `_fix_local_outliers`).
    """
    y = _analysis_signal(audio)
    duration = audio.duration
    found = _onset_tempo(y, preferred_bpm)
    if found is None:
        return BeatGrid(0.0, np.zeros(0), duration)
    onset, tempo = found
    times = _tracked(onset, tempo)
    bpm = _fit_bpm(times, tempo)
    times = _refine_to_attacks(_regularise(times, bpm, duration), y)
    times = _fix_local_outliers(times)
    bpm = _fit_bpm(times, bpm)
    return BeatGrid(bpm, times, duration)


def track_beats(
    audio: Audio, *, bpm: float | None = None, preferred_bpm: tuple[float, float] = PREFERRED_BPM
) -> np.ndarray:
    """Beat times (seconds) as the tracker finds them, each moved onto its attack, with no smoothing
    or completion of the grid: what a measurement of beat regularity needs (a stumble stays in it).
    `bpm`: the tempo to track at (default: estimated, octave-corrected as in `analyze_beats`)."""
    return track_pulse(audio, bpm=bpm, preferred_bpm=preferred_bpm)[0]


def track_pulse(
    audio: Audio, *, bpm: float | None = None, preferred_bpm: tuple[float, float] = PREFERRED_BPM
) -> tuple[np.ndarray, float]:
    """(`track_beats`, pulse clarity): the clarity is the onset envelope's normalised autocorrelation
    at the beat period (1 = every beat repeats exactly; music with a drum kit ~0.3-0.8; noise and
    beatless audio < 0.2, where the tracker still returns "beats" that mean nothing)."""
    import librosa

    y = _analysis_signal(audio)
    found = _onset_tempo(y, preferred_bpm)
    if found is None:
        return np.zeros(0), 0.0
    onset, tempo = found
    tempo = bpm or tempo
    centred = onset - onset.mean()
    ac = librosa.autocorrelate(centred, max_size=onset.size)
    lag = 60.0 * ANALYSIS_RATE / HOP / tempo
    lo, hi = int(np.floor(lag)), int(np.ceil(lag)) + 1
    clarity = float(ac[lo:hi].max() / ac[0]) if hi < ac.size and ac[0] > 0 else 0.0
    return _refine_to_attacks(_tracked(onset, tempo), y), clarity


def _choose_octave(onset: np.ndarray, tempo: float, preferred: tuple[float, float]) -> float:
    """Among tempo x {1/2, 1, 2}, keep the one in the preferred range; when two are, the stronger pulse."""
    import librosa

    candidates = [tempo * f for f in (0.5, 1.0, 2.0) if preferred[0] <= tempo * f < preferred[1]]
    if not candidates:
        return tempo
    if len(candidates) == 1:
        return candidates[0]
    # Autocorrelation of the onset envelope at each candidate's lag: the real pulse repeats strongly.
    ac = librosa.autocorrelate(onset - onset.mean(), max_size=onset.size)
    frame_rate = ANALYSIS_RATE / HOP

    def strength(bpm: float) -> float:
        lag = 60.0 * frame_rate / bpm
        lo, hi = int(np.floor(lag)), int(np.ceil(lag)) + 1
        return float(ac[lo:hi].max()) if hi < ac.size else -np.inf

    return max(candidates, key=lambda bpm: (strength(bpm) > 0.8 * strength(tempo), bpm == tempo, bpm))


def _local_period(times: np.ndarray, i: int, reach: int = 4) -> float:
    """Median beat interval among the `reach` intervals on each side of beat i."""
    lo, hi = max(0, i - reach), min(times.size, i + reach + 1)
    return float(np.median(np.diff(times[lo:hi])))


def _regularise(times: np.ndarray, bpm: float, duration: float) -> np.ndarray:
    """Clean the tracker's beats with local (not global) tempo, so slow tempo drift is kept:
    drop a beat closer than half a local period to the previous one (doubled), fill a gap of k local
    periods with k-1 evenly spaced beats (skipped), and extend the grid at both ends with the local
    period there, so every pulse from the start to the end of the audio has a beat."""
    if times.size < 4 or bpm <= 0:
        return times
    kept = [float(times[0])]
    for i in range(1, times.size):
        if times[i] - kept[-1] >= 0.5 * _local_period(times, i):
            kept.append(float(times[i]))
    t = np.asarray(kept)
    if t.size < 4:
        return t
    filled = [float(t[0])]
    for i in range(1, t.size):
        period = _local_period(t, i)
        gap = t[i] - t[i - 1]
        k = round(gap / period)
        if k >= 2 and abs(gap / period - k) < 0.3:
            filled.extend(float(t[i - 1] + gap * j / k) for j in range(1, k))
        filled.append(float(t[i]))
    t = np.asarray(filled)
    head = float(np.median(np.diff(t[:5])))
    tail = float(np.median(np.diff(t[-5:])))
    before = np.arange(t[0] - head, -0.05 * head, -head)[::-1] if t[0] - head > -0.05 * head else np.zeros(0)
    after = (
        np.arange(t[-1] + tail, duration - 0.1 * tail, tail)
        if t[-1] + tail < duration - 0.1 * tail
        else np.zeros(0)
    )
    out = np.concatenate([before, t, after])
    # A "beat" in the last tenth of a period is the tracker's end effect: nothing follows it.
    return out[(out >= 0) & (out < duration - 0.1 * tail)]


def attack_envelope(y: np.ndarray) -> tuple[np.ndarray, float, int]:
    """(rise, frames per second, pad): the per-frame rise (dB) of the ~2 ms log-energy envelope above
    800 Hz, frames `ANALYSIS_RATE // 1000` samples apart (~1 ms); frame k + `pad` is at k ms.

    Attacks are found above 800 Hz: there a 2 ms energy frame is steady between attacks, while low
    notes (a bass, a kick's body) make a short frame's energy swing with the waveform's phase.
    """
    from scipy import signal

    hop = ANALYSIS_RATE // 1000
    frame = 2 * hop
    sos = signal.butter(4, 800.0, btype="highpass", fs=ANALYSIS_RATE, output="sos")
    y = signal.sosfilt(sos, np.asarray(y, dtype=np.float64))
    # Silence before the start, so a sound that begins at sample 0 still shows its rise.
    y = np.concatenate([np.zeros(frame), y])
    # Mean square over each 2 ms frame, (y.size - frame) // hop of them.
    energy = np.maximum(window_means(y * y, frame, hop)[: max(0, (y.size - frame) // hop)], 0.0)
    level = 10 * np.log10(energy + 1e-12 + 1e-4 * float(energy.max() if energy.size else 0.0))
    return np.diff(level), ANALYSIS_RATE / hop, frame // hop


def attack_lag(times: np.ndarray, rise: np.ndarray, rate: float, pad: int) -> float:
    """Seconds from the tracker's beats to the music's attacks, common to all beats: the peak of the
    beat-synchronous average of the (positive) rise envelope over [-120, +40] ms around each beat.

    The onset-strength peak lags the physical attack by 7-60 ms (analysis window smear; more with
    soft-attack instruments, whose median-over-bands onset peaks late); the lag is one number per piece
    of music, so it is measured from all its beats at once rather than guessed per beat.
    """
    lo, hi = round(-0.120 * rate), round(0.040 * rate)
    rows = []
    for t in times:
        c = int(t * rate) + pad
        if c + lo >= 0 and c + hi < rise.size:
            rows.append(np.maximum(rise[c + lo : c + hi], 0.0))
    if len(rows) < 4:
        return -0.015
    profile = np.convolve(np.mean(rows, axis=0), np.ones(3) / 3, mode="same")
    return float((lo + int(np.argmax(profile))) / rate)


def _refine_to_attacks(times: np.ndarray, y: np.ndarray, reach: float = 0.03) -> np.ndarray:
    """Move each beat to the steepest rise of the ~1 ms log-energy envelope (above 800 Hz) within
    +-`reach` s of where the piece's common attack lag (`attack_lag`) puts it.

    A beat with no clear rise (< 3 dB per ms) nearby moves by the common lag only.
    """
    if times.size == 0:
        return times
    rise, rate, pad = attack_envelope(y)
    if rise.size < 4:
        return times
    lag = attack_lag(times, rise, rate, pad)
    hop = ANALYSIS_RATE // 1000
    out = np.maximum(times + lag, 0.0)
    for i, t in enumerate(out):
        lo = max(0, int((t - reach) * rate) + pad)
        hi = min(rise.size, int((t + reach) * rate) + pad + 1)
        if hi <= lo:
            continue
        window = rise[lo:hi]
        # Steepest rise, weighted towards where the attack is expected; other rises nearby (a swell,
        # an echo, the next hi-hat) weigh less.
        weight = np.exp(-0.5 * ((np.arange(lo, hi) - (t * rate + pad)) / (reach * rate)) ** 2)
        k = int(np.argmax(window * weight))
        if window[k] > 3.0:
            j = lo + k
            # rise[j] compares frames j and j+1 (1 ms apart, 2 ms long): the attack starts near frame j+1.
            out[i] = max(0.0, ((j + 1) * hop - 2 * hop) / ANALYSIS_RATE)
    return out


def _fix_local_outliers(times: np.ndarray, tolerance: float = 0.012, reach: int = 4) -> np.ndarray:
    """A beat more than `tolerance` s away from where its `reach` neighbours on each side put it (the
    median of t[i+k] - k * local period) moves there: one stray attack should not bend the grid, while
    slow tempo drift (all neighbours agree) is kept."""
    if times.size < 2 * reach + 1:
        return times
    out = times.copy()
    for i in range(times.size):
        lo, hi = max(0, i - reach), min(times.size, i + reach + 1)
        local = times[lo:hi]
        period = float(np.median(np.diff(local)))
        ks = [k for k in range(lo - i, hi - i) if k != 0]
        predicted = float(np.median([times[i + k] - k * period for k in ks]))
        if abs(times[i] - predicted) > tolerance:
            out[i] = predicted
    return out


def _fit_bpm(times: np.ndarray, fallback: float) -> float:
    """BPM from a least-squares line through (beat index, time), ignoring gaps and doubled beats."""
    if times.size < 4:
        return float(fallback)
    median = float(np.median(np.diff(times)))
    # Index each beat by how many median periods it lies from the first (gaps count as missed beats).
    index = np.round((times - times[0]) / median)
    keep = np.abs((times - times[0]) - index * median) < 0.25 * median
    if keep.sum() < 4:
        return 60.0 / median
    slope, _ = np.polyfit(index[keep], times[keep], 1)
    return float(60.0 / slope) if slope > 0 else float(fallback)


def octave_ratio(source_bpm: float, target_bpm: float) -> tuple[float, float]:
    """(rate, octave): `rate` = target / (source x octave) with octave in {.., 1/2, 1, 2, ..} chosen so
    the rate is closest to 1. Stretching by `rate` makes the source's pulse match the target's."""
    if source_bpm <= 0 or target_bpm <= 0:
        return 1.0, 1.0
    octave = 2.0 ** np.round(np.log2(target_bpm / source_bpm))
    return float(target_bpm / (source_bpm * octave)), float(octave)


def choose_target_bpm(grids: list[BeatGrid | None], policy: str = "first") -> float:
    """The track's tempo: the first segment's (`first`, default: the opening scene sets the pace), or the
    `median` of all, folded to the first segment's octave. Segments without a pulse (bpm 0) are skipped;
    0.0 when none has one (then nothing is stretched)."""
    valid = [g.bpm for g in grids if g is not None and g.bpm > 0]
    if not valid:
        return 0.0
    if policy == "first":
        return float(valid[0])
    if policy == "median":
        folded = [b * octave_ratio(b, valid[0])[1] for b in valid]
        return float(np.median(folded))
    raise ValueError(f"unknown target tempo policy {policy!r} (use 'first' or 'median')")


def stretch(audio: Audio, rate: float) -> Audio:
    """Play `audio` `rate` times faster without changing pitch (rubberband, R3 'fine' engine)."""
    import pyrubberband

    if abs(rate - 1.0) < 1e-6:
        return audio
    y = audio.samples.T if audio.channels > 1 else audio.samples[0]
    out = pyrubberband.time_stretch(y, audio.sample_rate, rate, rbargs={"--fine": "", "--no-threads": ""})
    out = np.asarray(out, dtype=np.float32)
    return Audio(out.T if out.ndim == 2 else out[np.newaxis, :], audio.sample_rate)


def stretch_to_tempo(
    audio: Audio, source_bpm: float, target_bpm: float, *, max_stretch: float = MAX_STRETCH
) -> Audio:
    """Time-stretch `audio` from `source_bpm` to `target_bpm` (octave-folded), keeping pitch.

    Returns the audio unchanged when the folded change is under 0.1 % or above `max_stretch`.
    """
    rate, _ = octave_ratio(source_bpm, target_bpm)
    if abs(rate - 1.0) < 1e-3 or abs(rate - 1.0) > max_stretch:
        return audio
    return stretch(audio, rate)


# A segment whose beats bend (quadratic fit) further than this from their straight-line grid drifts in tempo:
# it is stretched along a time map (`drift_time_map`) rather than by its average tempo.
DRIFT_TOLERANCE_SECONDS = 0.010
DRIFT_SMOOTH_BEATS = 4  # smoothing reach (beats each side) and key-frame spacing of the time map


def _smoothed_beats(times: np.ndarray, index: np.ndarray, reach: int) -> np.ndarray:
    """Each beat's time from a line fitted through its `reach` neighbours on each side: keeps tempo
    drift (seconds of change), drops a performer's per-beat timing (ms)."""
    out = np.empty_like(times)
    for i in range(times.size):
        lo, hi = max(0, i - reach), min(times.size, i + reach + 1)
        slope, intercept = np.polyfit(index[lo:hi], times[lo:hi], 1)
        out[i] = intercept + slope * index[i]
    return out


def _drifts(times: np.ndarray, index: np.ndarray, tolerance: float) -> bool:
    """Whether the beats bend away from their straight line by more than `tolerance` s along a smooth
    (quadratic) curve: a tempo that speeds up or slows down over the segment. Beats more than a tenth of
    a period off that curve (a tracker's stray first beat, a fill) are left out and the curve refitted,
    and a few neighbouring beats off by 10-20 ms do not bend a curve fitted to all of them: a steady
    performance whose grid has a local error is not "drifting" (stretching it along a map would move
    its beats, not fix them)."""
    period = float(np.median(np.diff(times)))
    keep = np.ones(times.size, dtype=bool)
    for _ in range(2):
        curve = np.polyval(np.polyfit(index[keep], times[keep], 2), index)
        keep = np.abs(times - curve) < 0.1 * period
        if keep.sum() < 3 * DRIFT_SMOOTH_BEATS:
            return False
    curve = np.polyval(np.polyfit(index[keep], times[keep], 2), index[keep])
    line = np.polyval(np.polyfit(index[keep], times[keep], 1), index[keep])
    return float(np.max(np.abs(curve - line))) >= tolerance


def drift_time_map(
    grid: BeatGrid, rate: float, sample_rate: int, frames: int, tolerance: float = DRIFT_TOLERANCE_SECONDS
) -> list[tuple[int, int]] | None:
    """A rubberband time map [(source frame, target frame), ...] that puts the segment's smoothed beats
    on an even grid at `rate` x its mean tempo, or None when its tempo does not drift (a quadratic through
    its beats stays within `tolerance` s of the straight-line grid: `_drifts`) or there are too few
    beats to tell."""
    times = grid.beat_times
    if times.size < 3 * DRIFT_SMOOTH_BEATS or grid.bpm <= 0:
        return None
    median = float(np.median(np.diff(times)))
    index = np.round((times - times[0]) / median)
    if np.any(np.diff(index) <= 0):
        return None
    slope, intercept = np.polyfit(index, times, 1)
    if not _drifts(times, index, tolerance):
        return None
    smooth = _smoothed_beats(times, index, DRIFT_SMOOTH_BEATS)
    line = intercept + slope * index
    # The first beat inside the audio keeps its place (stretched by the mean rate); every later key
    # lands on the even grid that starts there, so no interval of the output departs from the period.
    inside = np.nonzero(smooth > 0)[0]
    if inside.size < 2 * DRIFT_SMOOTH_BEATS:
        return None
    first = int(inside[0])
    keys = list(range(first, times.size, DRIFT_SMOOTH_BEATS))
    if keys[-1] != times.size - 1:
        keys.append(times.size - 1)
    src = np.round(smooth[keys] * sample_rate).astype(np.int64)
    dst = np.round((smooth[first] + line[keys] - line[first]) / rate * sample_rate).astype(np.int64)
    ok = (src > 0) & (dst > 0) & (src < frames)
    src, dst = src[ok], dst[ok]
    if src.size < 2 or np.any(np.diff(src) <= 0) or np.any(np.diff(dst) <= 0):
        return None
    # Beyond the last key the local stretch of the last key interval goes on to the end.
    tail = (dst[-1] - dst[-2]) / (src[-1] - src[-2])
    end = int(dst[-1] + round((frames - src[-1]) * tail))
    return [(0, 0), *zip(src.tolist(), dst.tolist(), strict=True), (frames, end)]


def stretch_along(audio: Audio, time_map: list[tuple[int, int]]) -> Audio:
    """Stretch `audio` along a time map (pitch kept). Rubberband 3.1 honours time maps with its R2
    engine only (R3 'fine' ignores them), so this uses R2."""
    import pyrubberband

    y = audio.samples.T if audio.channels > 1 else audio.samples[0]
    out = pyrubberband.timemap_stretch(y, audio.sample_rate, time_map, rbargs={"--no-threads": ""})
    out = np.asarray(out, dtype=np.float32)
    return Audio(out.T if out.ndim == 2 else out[np.newaxis, :], audio.sample_rate)


def align_segment(
    audio: Audio,
    grid: BeatGrid,
    target_bpm: float,
    *,
    max_stretch: float = MAX_STRETCH,
    time_map: bool = False,
) -> tuple[Audio, BeatGrid]:
    """Tempo-match one segment: (stretched audio, its grid at the target tempo and octave).

    The grid is scaled by the stretch rate (times / rate) and re-counted at the target's octave, so
    the beats of every aligned segment are at the same level. A change above `max_stretch` (after
    octave folding) is not applied: the audio and grid come back unstretched. With `time_map`, a
    segment whose tempo drifts (`drift_time_map`) is stretched along its beats onto an even grid at
    the target tempo, and its grid is that even grid.
    """
    if grid.bpm <= 0 or target_bpm <= 0:
        return audio, grid
    rate, octave = octave_ratio(grid.bpm, target_bpm)
    if abs(rate - 1.0) > max_stretch:
        return audio, grid
    sr = audio.sample_rate
    keys = drift_time_map(grid, rate, sr, audio.frames) if time_map else None
    if keys is not None:
        out = stretch_along(audio, keys)
        src, dst = np.array(keys, dtype=np.float64).T
        x = grid.beat_times * sr
        times = np.interp(x, src, dst)
        # A tracked beat can lie before the clip's start (its grid extrapolated there); np.interp would
        # pin it to frame 0, a phantom beat off the pulse (0.42 s before the next at 0.59 s a beat
        # on the drifting realistic clip), which the planner then took as nxt's first beat. Beyond
        # either end the map's end slopes go on, so such a beat stays outside the clip.
        before, after = x < src[0], x > src[-1]
        times[before] = dst[0] + (x[before] - src[0]) * (dst[1] - dst[0]) / (src[1] - src[0])
        times[after] = dst[-1] + (x[after] - src[-1]) * (dst[-1] - dst[-2]) / (src[-1] - src[-2])
        times /= sr
        warped = BeatGrid(grid.bpm * rate, times, out.duration).at_octave(octave)
        return out, BeatGrid(warped.bpm, warped.beat_times[warped.beat_times < out.duration], out.duration)
    out = stretch(audio, rate) if abs(rate - 1.0) >= 1e-3 else audio
    scaled = grid.scaled(rate).at_octave(octave)
    return out, BeatGrid(scaled.bpm, scaled.beat_times[scaled.beat_times < out.duration], out.duration)


def beat_f_measure(estimated: np.ndarray, reference: np.ndarray, window: float = 0.07) -> float:
    """F-measure of beat detections (MIREX style): each reference beat matches at most one estimate
    within +-`window` seconds."""
    est = np.sort(np.asarray(estimated, dtype=float))
    ref = np.sort(np.asarray(reference, dtype=float))
    if est.size == 0 or ref.size == 0:
        return 0.0
    used = np.zeros(est.size, dtype=bool)
    hits = 0
    for r in ref:
        d = np.abs(est - r)
        d[used] = np.inf
        j = int(np.argmin(d))
        if d[j] <= window:
            used[j] = True
            hits += 1
    precision, recall = hits / est.size, hits / ref.size
    return 0.0 if hits == 0 else 2 * precision * recall / (precision + recall)
