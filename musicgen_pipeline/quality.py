"""The quality loop's verdict on one seam, and the transition options a request implies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.audio.metrics import QualityThresholds
from musicgen_pipeline.request import SoundtrackRequest
from musicgen_pipeline.settings import Settings


@dataclass(frozen=True)
class SeamVerdict:
    scores: dict[str, Any]
    passed: bool
    failures: int
    badness: float


def quality_thresholds(settings: Settings) -> QualityThresholds:
    """The seam thresholds the settings ask for (the audio core takes them as a parameter)."""
    return QualityThresholds(
        mfcc_similarity_min=settings.mfcc_similarity_min,
        spectral_flux_max=settings.spectral_flux_max,
        chroma_correlation_min=settings.chroma_correlation_min,
        energy_ratio_max=settings.energy_ratio_max,
        inter_beat_deviation_max=settings.inter_beat_deviation_max,
        phase_error_max=settings.phase_error_max,
    )


def transition_options(request: SoundtrackRequest, settings: Settings) -> Any:
    """The audio core's `TransitionOptions` for this request (per-request switches over the settings)."""
    from musicgen_pipeline.audio.seam_options import TransitionOptions

    return TransitionOptions(
        crossfade_seconds=request.crossfade_duration,
        beat_align=request.beat_aligned,
        tempo_match=request.tempo_match,
        stem_aware=request.stem_aware and settings.use_stem_aware_crossfade,
        max_stretch=settings.max_tempo_stretch,
    )


def judge_seam(previous: Audio, nxt: Audio, options: Any, thresholds: QualityThresholds) -> SeamVerdict:
    from musicgen_pipeline.audio.join import score_seam

    scores = score_seam(previous, nxt, options, thresholds)
    return SeamVerdict(scores.to_dict(), scores.passed, len(scores.failures), float(scores.badness()))
