"""What a join reports: per input segment (`SegmentReport`), per seam (`TransitionReport`), and the
whole (`JoinResult`). Plain data; `to_dict()` is the JSON the CLI prints and the pipeline stores."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.audio.metrics import TransitionScores
from musicgen_pipeline.audio.seam_plan import TransitionPlan


@dataclass(frozen=True)
class SegmentReport:
    """One input segment: its tempo before and after tempo matching."""

    index: int
    duration: float
    bpm: float
    aligned_bpm: float
    stretch_rate: float
    aligned_duration: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class TransitionReport:
    """One seam in the joined track: where, tempi on both sides, scores, pass/fail."""

    index: int
    boundary_time: float  # centre of the overlap, seconds into the joined track
    overlap_start_time: float
    overlap_seconds: float
    bpm_before: float  # tempo of the segment before the seam, as played (after tempo matching)
    bpm_after: float  # tempo of the segment after the seam, as played
    bass_swap_time: float | None  # seconds into the joined track
    beat_aligned: bool
    stem_aware: bool
    scores: TransitionScores
    plan: TransitionPlan
    level_step_db: float = 0.0  # the incoming side's gain on arrival (`seam_level.level_glides`), dB

    @property
    def passed(self) -> bool:
        return self.scores.passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "boundary_time": round(self.boundary_time, 4),
            "overlap_start_time": round(self.overlap_start_time, 4),
            "overlap_seconds": round(self.overlap_seconds, 4),
            "bpm_before": round(self.bpm_before, 3),
            "bpm_after": round(self.bpm_after, 3),
            "bass_swap_time": None if self.bass_swap_time is None else round(self.bass_swap_time, 4),
            "beat_aligned": self.beat_aligned,
            "stem_aware": self.stem_aware,
            "prev_end_trim": round(self.plan.prev_end_trim / self.plan.sample_rate, 4),
            "next_start_trim": round(self.plan.next_start / self.plan.sample_rate, 4),
            "phase_shift_ms": round(1000 * self.plan.phase_shift_frames / self.plan.sample_rate, 2),
            "level_step_db": round(self.level_step_db, 2),
            **self.scores.to_dict(),
            "plan": self.plan.to_dict(),
        }


@dataclass(frozen=True)
class JoinResult:
    """The joined track (not yet loudness-normalised) and what happened at each seam."""

    audio: Audio
    transitions: list[TransitionReport]
    segments: list[SegmentReport]
    target_bpm: float
    stem_source: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.transitions)

    def length_rule(self) -> dict[str, Any]:
        """How the joined duration follows from the inputs (before any `fit_to_length`):
        duration = sum(aligned_duration) - sum over seams (overlap_seconds + prev_end_trim + next_start_trim),
        where prev_end_trim is what is left of the previous segment after its overlap (the overlap's
        start moved back to a beat of it) and next_start_trim what the next segment skips before its
        overlap (to its first beat, bar position and onset phase)."""
        aligned = sum(s.aligned_duration for s in self.segments)
        overlaps = sum(t.overlap_seconds for t in self.transitions)
        trims = sum((t.plan.prev_end_trim + t.plan.next_start) / t.plan.sample_rate for t in self.transitions)
        return {
            "rule": "duration = sum(aligned_duration) - sum(overlap_seconds + prev_end_trim + next_start_trim)",
            "aligned_total": round(aligned, 4),
            "overlaps_total": round(overlaps, 4),
            "trims_total": round(trims, 4),
            "duration": round(aligned - overlaps - trims, 4),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration": round(self.audio.duration, 4),
            "sample_rate": self.audio.sample_rate,
            "channels": self.audio.channels,
            "target_bpm": round(self.target_bpm, 3),
            "stem_source": self.stem_source,
            "passed": self.passed,
            "length_rule": self.length_rule(),
            "segments": [s.to_dict() for s in self.segments],
            "transitions": [t.to_dict() for t in self.transitions],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }
