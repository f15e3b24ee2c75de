"""`transition_report`: per-seam scores and the quality loop's history, with asset checks.

Checks (results show on the asset in the UI). They are partitioned like the asset, so every result
belongs to one soundtrack (partition), which its description and metadata also name; each check's
description says whether a failure is an ERROR or a WARN:
- ``transitions_pass_thresholds`` (WARN): every seam of the final mix passes MFCC similarity, spectral
  flux, chroma correlation, energy ratio (and has no click).
- ``quality_loop_converged`` (WARN): no scene had to keep its best failing attempt after
  MAX_REGEN_ATTEMPTS regenerations.
- ``duration_matches_request`` (ERROR): the soundtrack lasts the requested total (sum of the scene
  durations) within one audio frame; a segment too short for its seams (extreme tempo stretch) fails it.
None blocks: `transition_report` is the last asset of a render, so nothing downstream waits on them.
The report is also written to ``outputs/<partition>/transition_report.json``, and the partition's
``summary.json`` (the catalog's row; its presence marks the partition rendered) last of all.
"""

import time
import warnings
from datetime import datetime, timezone
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from musicgen_pipeline.defs.metadata import listen_link, ms, sig3, table
from musicgen_pipeline.defs.partitions import soundtrack_partitions
from musicgen_pipeline.naming import SOUNDTRACK_GROUP
from musicgen_pipeline.partition_store import write_json_atomic
from musicgen_pipeline.request import SoundtrackRequest, parse_request
from musicgen_pipeline.resources import SettingsResource

CHECK_SEAMS = "transitions_pass_thresholds"
CHECK_LOOP = "quality_loop_converged"
CHECK_DURATION = "duration_matches_request"
CHECK_DESCRIPTIONS = {
    CHECK_SEAMS: "WARN on failure (does not block): every seam of this soundtrack passes MFCC similarity, "
    "spectral flux, chroma correlation and energy ratio, with no click.",
    CHECK_LOOP: "WARN on failure (does not block): no scene of this soundtrack kept its best failing attempt "
    "after MAX_REGEN_ATTEMPTS regenerations.",
    CHECK_DURATION: "ERROR on failure (does not block: nothing runs after it): this soundtrack lasts its "
    "requested total within one audio frame.",
}
# Partitioned checks are a preview feature of Dagster 1.13 (a warning at import); they work as used here.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    CHECK_SPECS = [
        dg.AssetCheckSpec(
            name, asset="transition_report", description=text, partitions_def=soundtrack_partitions
        )
        for name, text in CHECK_DESCRIPTIONS.items()
    ]


def expected_duration(request: SoundtrackRequest, sample_rate: int) -> tuple[float, float]:
    """(expected seconds, tolerance) of the soundtrack: the requested total, within one audio frame."""
    return request.expected_duration, 1.0 / sample_rate


@dg.asset(
    partitions_def=soundtrack_partitions,
    group_name=SOUNDTRACK_GROUP,
    kinds={"json"},
    check_specs=CHECK_SPECS,
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

    key = context.partition_key
    exhausted_idx = [s["index"] for s in exhausted]
    judged = {"partition": key, "listen": listen_link(config.listen_url, key, "scores")}
    yield dg.Output(
        report,
        metadata={
            "listen": listen_link(config.listen_url, key, "scores"),
            "report_file": dg.MetadataValue.path(str(path)),
            "summary_file": dg.MetadataValue.path(str(files.summary)),
            "transitions": len(transitions),
            "failing": len(failing),
            "regenerations": summary["regenerations"],
            "scores": table(
                [
                    ("seam", "int", "seam number (1 = between scenes 1 and 2)"),
                    ("centre_seconds", "float", "centre of the crossfade in the track"),
                    ("mfcc_similarity", "float", "passes above MFCC_SIMILARITY_MIN"),
                    ("spectral_flux", "float", "passes below SPECTRAL_FLUX_MAX"),
                    ("chroma_correlation", "float", "passes above CHROMA_CORRELATION_MIN"),
                    ("energy_ratio", "float", "passes below ENERGY_RATIO_MAX"),
                    ("clicks", "int", "clicks found in the crossfade"),
                    ("verdict", "string", "pass, or FAIL with the failing scores"),
                ],
                [
                    {
                        "seam": t["index"] + 1,
                        "centre_seconds": ms(t["boundary_time"]),
                        "mfcc_similarity": sig3(t["mfcc_similarity"]),
                        "spectral_flux": sig3(t["spectral_flux"]),
                        "chroma_correlation": sig3(t["chroma_correlation"]),
                        "energy_ratio": sig3(t["energy_ratio"]),
                        "clicks": len(t.get("clicks") or []),
                        "verdict": "pass" if t["passed"] else "FAIL: " + "; ".join(map(str, t["failures"])),
                    }
                    for t in transitions
                ],
            ),
        },
    )
    seams_text = f"{len(transitions) - len(failing)}/{len(transitions)} seams pass" + "".join(
        f"; seam {t['index'] + 1}: {'; '.join(map(str, t['failures']))}" for t in failing
    )
    yield dg.AssetCheckResult(
        check_name=CHECK_SEAMS,
        passed=not failing,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{key}: {seams_text} (WARN)",
        metadata={
            **judged,
            "failing_seams": table(
                [("seam", "int", "seam number"), ("failures", "string", "what failed")],
                [{"seam": t["index"] + 1, "failures": "; ".join(map(str, t["failures"]))} for t in failing],
            ),
            "seams": len(transitions),
        },
    )
    yield dg.AssetCheckResult(
        check_name=CHECK_LOOP,
        passed=not exhausted_idx,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{key}: "
        + (
            f"scene(s) {', '.join(str(i + 1) for i in exhausted_idx)} kept a failing attempt (WARN)"
            if exhausted_idx
            else f"converged after {summary['regenerations']} regeneration(s)"
        ),
        metadata={
            **judged,
            "exhausted_scenes": ", ".join(str(i + 1) for i in exhausted_idx) or "none",
            "regenerations": summary["regenerations"],
            "max_regen_attempts": config.max_regen_attempts,
        },
    )
    on_time = abs(actual - expected) <= tolerance
    yield dg.AssetCheckResult(
        check_name=CHECK_DURATION,
        passed=on_time,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{key}: {actual:.3f} s for {expected:.3f} s requested"
        + ("" if on_time else f", off by {actual - expected:+.3f} s (ERROR)"),
        metadata={
            **judged,
            "actual_seconds": ms(actual),
            "expected_seconds": ms(expected),
            "tolerance_seconds": sig3(tolerance),
        },
    )


def _run_seconds(context: AssetExecutionContext) -> float:
    record = context.instance.get_run_record_by_id(context.run.run_id)
    if record is None or record.start_time is None:
        return 0.0
    return max(0.0, time.time() - record.start_time)
