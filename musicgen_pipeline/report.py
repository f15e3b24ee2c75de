"""The transition report and the partition summary, built from the assets' values; plain Python.

- `transition_report(...)`: per-seam scores, the quality loop's attempts per scene and the duration
  check, as written to ``transition_report.json``.
- `summary_row(...)`: the partition's catalog row (``summary.json``, written last: its presence marks
  the partition rendered).
- `expected_duration(request, sample_rate)`: what the duration check expects.
- `seams_verdict`, `loop_verdict`, `duration_verdict`: each asset check's outcome on one soundtrack
  (passed, and the sentence that says why), as the checks of `transition_report` report them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from musicgen_pipeline.artifacts import SceneSegment, Soundtrack
from musicgen_pipeline.request import SoundtrackRequest


def expected_duration(request: SoundtrackRequest, sample_rate: int) -> tuple[float, float]:
    """(expected seconds, tolerance) of the soundtrack: the requested total, within one audio frame."""
    return request.expected_duration, 1.0 / sample_rate


def _scene_history(segment: SceneSegment) -> dict[str, Any]:
    return {
        "index": segment.index,
        "kept_attempt": segment.attempt,
        "seed": segment.seed,
        "regenerations": segment.regenerations,
        "exhausted": segment.exhausted,
        "attempts": [
            {"attempt": a["attempt"], "seed": a["seed"], "passed": a["passed"], "scores": a["scores"]}
            for a in segment.attempts
        ],
    }


def transition_report(
    partition: str,
    request: SoundtrackRequest,
    segments: list[SceneSegment],
    soundtrack: Soundtrack,
    *,
    quality_loop: bool,
    max_regen_attempts: int,
) -> dict[str, Any]:
    transitions = list(soundtrack.transitions)
    expected, tolerance = expected_duration(request, soundtrack.sample_rate)
    return {
        "partition": partition,
        "passed": not soundtrack.failing,
        "thresholds": transitions[0]["thresholds"] if transitions else None,
        "transitions": transitions,
        "quality_loop": {
            "enabled": quality_loop,
            "max_regen_attempts": max_regen_attempts,
            "scenes": [_scene_history(s) for s in segments],
        },
        "duration": {
            "actual": soundtrack.duration,
            "expected": expected,
            "tolerance": tolerance,
            "requested": request.total_duration,
        },
    }


def summary_row(
    partition: str,
    request: SoundtrackRequest,
    segments: list[SceneSegment],
    soundtrack: Soundtrack,
    *,
    report_path: str,
    run_id: str,
    run_seconds: float,
) -> dict[str, Any]:
    # one generate call may have made several scenes (a batch): count its time once
    generation_seconds = sum({(s.seconds, s.attempt, s.index): s.seconds for s in segments}.values())
    actual = soundtrack.duration
    return {
        "partition": partition,
        "name": request.name,
        "scenes": len(request.scenes),
        "prompts": " | ".join(request.scene_prompts()),
        "model": segments[0].model_id if segments else request.model,
        "seed": request.seed,
        "requested_seconds": request.total_duration,
        "duration_seconds": round(actual, 3),
        "target_bpm": round(float(soundtrack.target_bpm), 3),
        "transitions": len(soundtrack.transitions),
        "transitions_passed": len(soundtrack.transitions) - len(soundtrack.failing),
        "regenerations": sum(s.regenerations for s in segments),
        "loudness_lufs": soundtrack.loudness["output_lufs"],
        "generation_seconds": round(generation_seconds, 3),
        "total_seconds": round(run_seconds, 3),
        "real_time_factor": round(run_seconds / max(actual, 1e-9), 4),
        "soundtrack_path": soundtrack.path,
        "report_path": report_path,
        "rendered_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_id": run_id,
    }


@dataclass(frozen=True)
class Verdict:
    """One check's outcome on one soundtrack: passed, and the sentence that says why."""

    passed: bool
    text: str


def failures_text(transition: dict[str, Any]) -> str:
    """What failed at one seam, as one phrase (``"mfcc_similarity 0.41 < 0.5; ..."``)."""
    return "; ".join(map(str, transition["failures"]))


def seams_verdict(soundtrack: Soundtrack) -> Verdict:
    """Every seam passes the thresholds (WARN on failure)."""
    transitions, failing = soundtrack.transitions, soundtrack.failing
    text = f"{len(transitions) - len(failing)}/{len(transitions)} seams pass" + "".join(
        f"; seam {t['index'] + 1}: {failures_text(t)}" for t in failing
    )
    return Verdict(not failing, f"{text} (WARN)")


def exhausted_scenes(segments: list[SceneSegment]) -> list[int]:
    """Indexes of the scenes that kept their best failing attempt."""
    return [s.index for s in segments if s.exhausted]


def loop_verdict(segments: list[SceneSegment]) -> Verdict:
    """No scene kept a failing attempt after its regenerations (WARN on failure)."""
    exhausted = exhausted_scenes(segments)
    if exhausted:
        return Verdict(
            False, f"scene(s) {', '.join(str(i + 1) for i in exhausted)} kept a failing attempt (WARN)"
        )
    return Verdict(True, f"converged after {sum(s.regenerations for s in segments)} regeneration(s)")


def duration_verdict(request: SoundtrackRequest, soundtrack: Soundtrack) -> Verdict:
    """The soundtrack lasts the requested total within one audio frame (ERROR on failure)."""
    expected, tolerance = expected_duration(request, soundtrack.sample_rate)
    actual = soundtrack.duration
    on_time = abs(actual - expected) <= tolerance
    text = f"{actual:.3f} s for {expected:.3f} s requested" + (
        "" if on_time else f", off by {actual - expected:+.3f} s (ERROR)"
    )
    return Verdict(on_time, text)
