"""Transition quality: four spectral scores and two rhythm scores at a seam, a click detector, and the thresholds they are judged by.

A seam is scored on the joined audio around the overlap [start, stop): the "before" window is the
`context` seconds that end where the overlap starts, the "after" window the `context` seconds that
begin where it ends.

- **MFCC similarity** (> 0.7 passes): cosine similarity of the mean MFCC vectors (coefficients 1-19,
  c0 = level left out) of the before and after windows. Timbre continuity.
- **Spectral flux at the boundary** (< 100 passes): *excess* spectral change at the seam, in percent of
  the music's own rate of change. Per 10 ms frame, flux = the mean over 64 mel bands (30 Hz-8 kHz,
  40 ms windows) of the rise in dB since the previous frame (half-wave rectified). Then
  `flux = 100 * max(0, mean(flux over the overlap) / mean(flux over before+after) - 1)` (the overlap
  widened to at least 0.5 s around its centre).
  Frames and bands are defined in seconds and Hz, so the number is the same at any sample rate >= 16 kHz;
  dB differences do not change with gain, so it is the same at any level. 0 = the seam changes
  the spectrum no faster than the music around it; 100 = twice as fast. Measured on the synthetic
  songs: a beat-aligned 2 s seam of a song into itself ~3, the same seam 50-250 ms off the beat ~10-13,
  into an unrelated 140 BPM song ~16, a 20-200 ms cut into white noise ~40-50. So 100 is a generous
  guard against gross seams (it is the issue's default); tighten SPECTRAL_FLUX_MAX (e.g. 25) for a strict one.
- **Chroma correlation** (> 0.5 passes): Pearson correlation of the mean 12-bin chroma vectors of the
  `CHROMA_CONTEXT_SECONDS` (8 s, several bars: a key, not a single chord) before the overlap and after it.
  Harmonic (key) continuity.
- **Energy ratio** (< 2.0 passes): louder / quieter RMS of the before and after windows (>= 1; 2.0 = 6 dB).
- **Inter-beat deviation** (<= 0.07 passes) and **phase error** (<= 0.05 beat passes): rhythm across the
  seam (`seam_rhythm`: the largest departure of an inter-beat interval touching the seam from the median
  beat; the two sides' beat grids' phase difference; both read at the felt pulse where the tracked grid
  counts twice it). Not judged (None) where there is no pulse. The limits sit just above unjoined
  music's own spread (`seam_rhythm.INTER_BEAT_DEVIATION_MAX`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.audio.seam_rhythm import INTER_BEAT_DEVIATION_MAX, PHASE_ERROR_MAX, seam_rhythm
from musicgen_pipeline.audio.window import Window

CONTEXT_SECONDS = 3.0
# Harmony changes every bar or two; the key only shows over several bars (8 s = 4 bars at 120 BPM).
CHROMA_CONTEXT_SECONDS = 8.0
FLUX_WINDOW_SECONDS = 0.040
FLUX_HOP_SECONDS = 0.010
FLUX_BANDS = 64
SEAM_MIN_SECONDS = 0.5
ENERGY_FLOOR = 10 ** (-90 / 20)  # RMS treated as silence (-90 dBFS)
FLUX_FMIN, FLUX_FMAX = 30.0, 8000.0


@dataclass(frozen=True)
class QualityThresholds:
    """Pass/fail limits of the scores. The defaults are the documented ones; an entry point that reads
    settings (MFCC_SIMILARITY_MIN, SPECTRAL_FLUX_MAX, CHROMA_CORRELATION_MIN, ENERGY_RATIO_MAX,
    INTER_BEAT_DEVIATION_MAX, PHASE_ERROR_MAX) builds its own and passes it down: nothing in `audio/`
    reads settings. Rhythm limits: a fraction of the beat period (0.08 = 8 %) and beats, set from
    the music's own spread (`seam_rhythm.INTER_BEAT_DEVIATION_MAX`)."""

    mfcc_similarity_min: float = 0.7
    spectral_flux_max: float = 100.0
    chroma_correlation_min: float = 0.5
    energy_ratio_max: float = 2.0
    inter_beat_deviation_max: float = INTER_BEAT_DEVIATION_MAX
    phase_error_max: float = PHASE_ERROR_MAX

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class TransitionScores:
    """The scores of one seam, the thresholds applied, and what failed (human-readable)."""

    mfcc_similarity: float
    spectral_flux: float
    chroma_correlation: float
    energy_ratio: float
    thresholds: QualityThresholds = field(default_factory=QualityThresholds)
    clicks: tuple[float, ...] = ()  # seconds (in the scored audio) of clicks found in the seam region
    # Rhythm across the seam (`seam_rhythm`); None = no pulse to measure (not judged). `rhythm_pulse`
    # says where it was read: "felt" (the strong beats of a grid that counts twice the felt pulse, whose
    # beats the phase error then counts) or "tracked" (every tracked beat).
    inter_beat_deviation: float | None = None
    phase_error: float | None = None
    rhythm_pulse: str | None = None

    @property
    def failures(self) -> list[str]:
        t = self.thresholds
        out = []
        if not self.mfcc_similarity > t.mfcc_similarity_min:
            out.append(f"MFCC similarity {self.mfcc_similarity:.3f} is not above {t.mfcc_similarity_min}")
        if not self.spectral_flux < t.spectral_flux_max:
            out.append(f"spectral flux {self.spectral_flux:.1f} is not below {t.spectral_flux_max}")
        if not self.chroma_correlation > t.chroma_correlation_min:
            out.append(
                f"chroma correlation {self.chroma_correlation:.3f} is not above {t.chroma_correlation_min}"
            )
        if not self.energy_ratio < t.energy_ratio_max:
            out.append(f"energy ratio {self.energy_ratio:.2f} is not below {t.energy_ratio_max}")
        if self.inter_beat_deviation is not None and self.inter_beat_deviation > t.inter_beat_deviation_max:
            out.append(
                f"inter-beat deviation {100 * self.inter_beat_deviation:.1f} % is above "
                f"{100 * t.inter_beat_deviation_max:g} %"
            )
        if self.phase_error is not None and self.phase_error > t.phase_error_max:
            pulse = " (of the felt pulse)" if self.rhythm_pulse == "felt" else ""
            out.append(f"beat phase error {self.phase_error:.3f} beat{pulse} is above {t.phase_error_max:g}")
        if self.clicks:
            out.append(f"{len(self.clicks)} click(s) at {', '.join(f'{c:.3f}s' for c in self.clicks[:5])}")
        return out

    @property
    def passed(self) -> bool:
        return not self.failures

    def badness(self) -> float:
        """How far past the thresholds the scores are (0 when all pass); for picking the best of several tries."""
        t = self.thresholds
        return (
            max(0.0, t.mfcc_similarity_min - self.mfcc_similarity)
            + max(0.0, self.spectral_flux - t.spectral_flux_max) / max(t.spectral_flux_max, 1e-9)
            + max(0.0, t.chroma_correlation_min - self.chroma_correlation)
            + max(0.0, self.energy_ratio - t.energy_ratio_max) / max(t.energy_ratio_max, 1e-9)
            + len(self.clicks)
            + max(0.0, (self.inter_beat_deviation or 0.0) - t.inter_beat_deviation_max)
            / max(t.inter_beat_deviation_max, 1e-9)
            + max(0.0, (self.phase_error or 0.0) - t.phase_error_max) / max(t.phase_error_max, 1e-9)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "mfcc_similarity": round(float(self.mfcc_similarity), 4),
            "spectral_flux": round(float(self.spectral_flux), 2),
            "chroma_correlation": round(float(self.chroma_correlation), 4),
            "energy_ratio": round(float(self.energy_ratio), 4),
            "clicks": [round(c, 4) for c in self.clicks],
            "inter_beat_deviation": _round(self.inter_beat_deviation),
            "phase_error": _round(self.phase_error),
            "rhythm_pulse": self.rhythm_pulse,
            "passed": self.passed,
            "failures": self.failures,
            "thresholds": self.thresholds.to_dict(),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0
    return float(np.dot(a, b) / (na * nb))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    return _cosine(a, b)


def mfcc_similarity(before: np.ndarray, after: np.ndarray, sample_rate: int) -> float:
    import librosa

    def mean_mfcc(y: np.ndarray) -> np.ndarray:
        m = librosa.feature.mfcc(
            y=y,
            sr=sample_rate,
            n_mfcc=20,
            n_fft=_n_fft(sample_rate, 0.064),
            fmax=min(8000.0, sample_rate / 2),
        )
        return m[1:].mean(axis=1)

    return _cosine(mean_mfcc(before), mean_mfcc(after))


def chroma_correlation(before: np.ndarray, after: np.ndarray, sample_rate: int) -> float:
    import librosa

    if not (np.any(before) and np.any(after)):
        return 0.0  # no pitch content on a side: nothing in common (and no tuning to estimate)

    def mean_chroma(y: np.ndarray) -> np.ndarray:
        n_fft = _n_fft(sample_rate, 0.128)
        with warnings.catch_warnings():
            # Noise or near-silence has no spectral peaks to estimate tuning from: librosa warns and
            # assumes A440, which is what we want.
            warnings.filterwarnings("ignore", message=".*empty frequency set.*", category=UserWarning)
            tuning = float(librosa.estimate_tuning(y=y, sr=sample_rate, n_fft=n_fft))
        return librosa.feature.chroma_stft(y=y, sr=sample_rate, n_fft=n_fft, tuning=tuning).mean(axis=1)

    return _pearson(mean_chroma(before), mean_chroma(after))


def energy_ratio(before: np.ndarray, after: np.ndarray) -> float:
    ra = float(np.sqrt(np.mean(np.square(before, dtype=np.float64)))) if before.size else 0.0
    rb = float(np.sqrt(np.mean(np.square(after, dtype=np.float64)))) if after.size else 0.0
    lo, hi = min(ra, rb), max(ra, rb)
    if hi <= ENERGY_FLOOR:
        return 1.0
    # Silence on one side reads as the -90 dBFS floor: a huge ratio, but a number JSON can carry.
    return hi / max(lo, ENERGY_FLOOR)


def flux_curve(y: np.ndarray, sample_rate: int) -> np.ndarray:
    """Per-frame (10 ms) spectral flux: the mean over 64 mel bands (30 Hz-8 kHz, 40 ms Hann windows, FFT
    bins under 8 Hz apart at any rate) of the rise in dB since the previous frame, half-wave rectified.
    dB differences do not change with gain (80 dB floor relative to the loudest frame)."""
    import librosa

    win = round(FLUX_WINDOW_SECONDS * sample_rate)
    hop = round(FLUX_HOP_SECONDS * sample_rate)
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=sample_rate,
        n_fft=_n_fft(sample_rate, 1.0 / 8.0),
        win_length=win,
        hop_length=hop,
        n_mels=FLUX_BANDS,
        fmin=FLUX_FMIN,
        fmax=min(FLUX_FMAX, sample_rate / 2),
        center=False,
    )
    db = librosa.power_to_db(mel, ref=float(mel.max()) if mel.size and mel.max() > 0 else 1.0, top_db=80.0)
    return np.maximum(0.0, np.diff(db, axis=1)).mean(axis=0)


def _n_fft(sample_rate: int, seconds: float) -> int:
    return int(2 ** math.ceil(math.log2(max(16, seconds * sample_rate))))


def score_transition(
    audio: Audio,
    overlap_start: int,
    overlap_stop: int,
    thresholds: QualityThresholds | None = None,
    *,
    context_seconds: float = CONTEXT_SECONDS,
    detect: bool = True,
    rhythm: bool = True,
) -> TransitionScores:
    """Score the seam of joined `audio` whose overlap is frames [overlap_start, overlap_stop).
    `rhythm`: also measure the inter-beat deviation and phase error across it (`seam_rhythm`)."""
    thresholds = thresholds or QualityThresholds()
    sr = audio.sample_rate
    y = audio.mono().astype(np.float32)
    ctx = round(context_seconds * sr)
    a0 = max(0, overlap_start - ctx)
    b1 = min(y.size, overlap_stop + ctx)
    before = y[a0:overlap_start]
    after = y[overlap_stop:b1]
    # Too little on one side (a segment shorter than the context): use what there is, at least 0.25 s.
    minimum = round(0.25 * sr)
    if before.size < minimum:
        before = y[a0 : max(overlap_start, a0 + minimum)]
    if after.size < minimum:
        after = y[max(b1 - minimum, overlap_start) : b1]

    cctx = round(max(context_seconds, CHROMA_CONTEXT_SECONDS) * sr)
    chroma_before = y[max(0, overlap_start - cctx) : overlap_start]
    chroma_after = y[overlap_stop : overlap_stop + cctx]
    if chroma_before.size < before.size:
        chroma_before = before
    if chroma_after.size < after.size:
        chroma_after = after

    hop = round(FLUX_HOP_SECONDS * sr)
    curve = flux_curve(y[a0:b1], sr)
    # Frame k of `curve` is the change into the window starting at (k + 1) * hop.
    starts = a0 + (np.arange(curve.size) + 1) * hop + round(FLUX_WINDOW_SECONDS * sr) // 2
    # The seam region: the overlap, widened to at least SEAM_MIN_SECONDS around its centre (a very
    # short crossfade is judged on the frames around it, not on one or two).
    centre = (overlap_start + overlap_stop) / 2
    half = max((overlap_stop - overlap_start) / 2, SEAM_MIN_SECONDS * sr / 2)
    in_seam = (starts >= centre - half) & (starts < centre + half)
    outside = ~in_seam
    if in_seam.any() and outside.any() and curve[outside].mean() > 0:
        flux = 100.0 * max(0.0, float(curve[in_seam].mean() / curve[outside].mean()) - 1.0)
    else:
        flux = 0.0

    clicks: tuple[float, ...] = ()
    if detect:
        seam = Audio(audio.samples[:, a0:b1], sr)
        clicks = tuple(a0 / sr + t for t in detect_clicks(seam))
    groove = seam_rhythm(audio, Window(overlap_start, overlap_stop)) if rhythm else None
    return TransitionScores(
        inter_beat_deviation=None if groove is None else groove.inter_beat_deviation,
        phase_error=None if groove is None else groove.phase_error,
        rhythm_pulse=None if groove is None or groove.period == 0 else ("felt" if groove.felt else "tracked"),
        mfcc_similarity=mfcc_similarity(before, after, sr),
        spectral_flux=flux,
        chroma_correlation=chroma_correlation(chroma_before, chroma_after, sr),
        energy_ratio=energy_ratio(before, after),
        thresholds=thresholds,
        clicks=clicks,
    )


def detect_clicks(audio: Audio, *, ratio: float = 5.0, block_seconds: float = 0.001) -> list[float]:
    """Times (seconds) of clicks: isolated bursts in the second difference of the waveform.

    A click (a discontinuity of value or slope, a one-sample spike) makes the second difference jump
    for a millisecond or so, far above both the music's usual level (median over +-100 ms) and the
    level 2-10 ms before and after it. Percussive attacks are not clicks: their broadband energy goes
    on for tens of milliseconds, so the neighbourhood check rejects them.
    """
    sr = audio.sample_rate
    x = audio.samples.astype(np.float64)
    if x.shape[1] < 8:
        return []
    d = np.max(np.abs(np.diff(x, n=2, axis=1)), axis=0)
    block = max(1, round(block_seconds * sr))
    n = d.size // block
    if n < 25:
        return []
    b = d[: n * block].reshape(n, block).max(axis=1)
    floor = 1e-6 + 1e-3 * float(np.median(b))
    typical = ndimage.median_filter(b, size=201, mode="nearest")
    near = ndimage.maximum_filter1d(b, size=9, mode="nearest")
    # Neighbourhoods [i-10, i-2] and [i+2, i+10] blocks: the 9-wide max centred at i-6 and i+6.
    before = np.concatenate([np.full(6, np.inf), near[:-6]])
    after = np.concatenate([near[6:], np.full(6, np.inf)])
    before[:6] = after[:6]
    after[-6:] = before[-6:]
    # Louder than the music's usual level AND than what follows it (an attack is followed by its own
    # loud body; a click is not) AND clearly louder than what precedes it (half weight: a click in the
    # decaying tail of a hi-hat must still count).
    reference = np.maximum(typical, np.maximum(after, 0.5 * before))
    hits = np.nonzero(b > ratio * (reference + floor))[0]
    times: list[float] = []
    for i in hits:
        t = (i * block + int(np.argmax(d[i * block : (i + 1) * block])) + 1) / sr
        if not times or t - times[-1] > 0.01:
            times.append(float(t))
    return times
