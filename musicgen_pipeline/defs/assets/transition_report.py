"""`transition_report`: per-seam scores and the quality loop's history, with asset checks.

Checks (results show on the asset in the UI):
- ``transitions_pass_thresholds`` (WARN): every seam of the final mix passes MFCC similarity, spectral
  flux, chroma correlation, energy ratio (and has no click).
- ``quality_loop_converged`` (WARN): no scene had to keep its best failing attempt after
  MAX_REGEN_ATTEMPTS regenerations.
- ``duration_matches_request`` (ERROR): the soundtrack lasts the requested total (sum of the scene
  durations) within one audio frame; a segment too short for its seams (extreme tempo stretch) fails it.
The report is also written to ``outputs/<partition>/transition_report.json``, and the partition's
``summary.json`` (the catalog's row; its presence marks the partition rendered) last of all.
"""

import time
from datetime import datetime, timezone
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from musicgen_pipeline.defs.partitions import soundtrack_partitions
from musicgen_pipeline.naming import SOUNDTRACK_GROUP
from musicgen_pipeline.partition_store import write_json_atomic
from musicgen_pipeline.request import SoundtrackRequest, parse_request
from musicgen_pipeline.resources import SettingsResource

CHECK_SEAMS = "transitions_pass_thresholds"
CHECK_LOOP = "quality_loop_converged"
CHECK_DURATION = "duration_matches_request"


def expected_duration(request: SoundtrackRequest, sample_rate: int) -> tuple[float, float]:
    """(expected seconds, tolerance) of the soundtrack: the requested total, within one audio frame."""
    return request.expected_duration, 1.0 / sample_rate


@dg.asset(
    partitions_def=soundtrack_partitions,
    group_name=SOUNDTRACK_GROUP,
    kinds={"json"},
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_SEAMS, asset="transition_report", description="Every seam passes the thresholds."
        ),
        dg.AssetCheckSpec(
            CHECK_LOOP, asset="transition_report", description="No scene exhausted its regenerations."
        ),
        dg.AssetCheckSpec(
            CHECK_DURATION, asset="transition_report", description="Soundtrack length as requested."
        ),
    ],
    description="Transition scores (MFCC similarity, spectral flux, chroma correlation, energy ratio) per seam, "
    "the quality loop's attempts per scene, and checks on them.",
)
def transition_report(
    context: AssetExecutionContext,
    soundtrack_request: dict[str, Any],
    scene_segments: list[dict[str, Any]],
    aligned_segments: dict[str, Any],
    soundtrack: dict[str, Any],
    settings: SettingsResource,
):
    request = parse_request(soundtrack_request)
    config = settings.resolved
    files = settings.store.files(context.partition_key)
    transitions = soundtrack["transitions"]
    failing = [t for t in transitions if not t["passed"]]
    exhausted = [s for s in scene_segments if s["exhausted"]]
    expected, tolerance = expected_duration(request, soundtrack["sample_rate"])
    actual = soundtrack["duration"]
    report = {
        "partition": context.partition_key,
        "passed": not failing,
        "thresholds": transitions[0]["thresholds"] if transitions else None,
        "transitions": transitions,
        "quality_loop": {
            "enabled": config.use_quality_loop,
            "max_regen_attempts": config.max_regen_attempts,
            "scenes": [
                {
                    "index": s["index"],
                    "kept_attempt": s["attempt"],
                    "seed": s["seed"],
                    "regenerations": s["regenerations"],
                    "exhausted": s["exhausted"],
                    "attempts": [
                        {
                            "attempt": a["attempt"],
                            "seed": a["seed"],
                            "passed": a["passed"],
                            "scores": a["scores"],
                        }
                        for a in s["attempts"]
                    ],
                }
                for s in scene_segments
            ],
        },
        "duration": {
            "actual": actual,
            "expected": expected,
            "tolerance": tolerance,
            "requested": request.total_duration,
        },
    }
    path = write_json_atomic(files.report, report)

    generation_seconds = sum(
        {(s["seconds"], s["attempt"], s["index"]): s["seconds"] for s in scene_segments}.values()
    )
    summary = {
        "partition": context.partition_key,
        "name": request.name,
        "scenes": len(request.scenes),
        "prompts": " | ".join(request.scene_prompts()),
        "model": scene_segments[0]["model_id"] if scene_segments else request.model,
        "seed": request.seed,
        "requested_seconds": request.total_duration,
        "duration_seconds": round(actual, 3),
        "target_bpm": round(float(aligned_segments["target_bpm"]), 3),
        "transitions": len(transitions),
        "transitions_passed": len(transitions) - len(failing),
        "regenerations": sum(s["regenerations"] for s in scene_segments),
        "loudness_lufs": soundtrack["loudness"]["output_lufs"],
        "generation_seconds": round(generation_seconds, 3),
        "total_seconds": round(_run_seconds(context), 3),
        "real_time_factor": round(_run_seconds(context) / max(actual, 1e-9), 4),
        "soundtrack_path": soundtrack["path"],
        "report_path": str(path),
        "rendered_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_id": context.run.run_id,
    }
    write_json_atomic(files.summary, summary)

    rows = "\n".join(
        f"| {t['index']} | {t['boundary_time']:.2f} | {t['mfcc_similarity']:.3f} | {t['spectral_flux']:.1f} | "
        f"{t['chroma_correlation']:.3f} | {t['energy_ratio']:.2f} | {'pass' if t['passed'] else 'FAIL'} |"
        for t in transitions
    )
    yield dg.Output(
        report,
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "transitions": len(transitions),
            "failing": len(failing),
            "regenerations": summary["regenerations"],
            "scores": dg.MetadataValue.md(
                "| seam | at s | MFCC sim | flux | chroma corr | energy ratio | verdict |\n|---|---|---|---|---|---|---|\n"
                + rows
            ),
        },
    )
    yield dg.AssetCheckResult(
        check_name=CHECK_SEAMS,
        passed=not failing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "failing_seams": dg.MetadataValue.json(
                [{"index": t["index"], "failures": t["failures"]} for t in failing]
            ),
            "seams": len(transitions),
        },
    )
    yield dg.AssetCheckResult(
        check_name=CHECK_LOOP,
        passed=not exhausted,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "exhausted_scenes": dg.MetadataValue.json([s["index"] for s in exhausted]),
            "regenerations": summary["regenerations"],
            "max_regen_attempts": config.max_regen_attempts,
        },
    )
    yield dg.AssetCheckResult(
        check_name=CHECK_DURATION,
        passed=abs(actual - expected) <= tolerance,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"actual_seconds": actual, "expected_seconds": expected, "tolerance_seconds": tolerance},
    )


def _run_seconds(context: AssetExecutionContext) -> float:
    record = context.instance.get_run_record_by_id(context.run.run_id)
    if record is None or record.start_time is None:
        return 0.0
    return max(0.0, time.time() - record.start_time)
