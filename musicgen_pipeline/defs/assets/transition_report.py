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
The report (`musicgen_pipeline.report`) is also written to ``transition_report.json``, and the
partition's ``summary.json`` (the catalog's row; its presence marks the partition rendered) last of all.
"""

import time
import warnings

import dagster as dg
from dagster import AssetExecutionContext

from musicgen_pipeline.artifacts import SceneSegment, Soundtrack
from musicgen_pipeline.defs.metadata import listen_link, ms, sig3, table
from musicgen_pipeline.defs.partitions import soundtrack_partitions
from musicgen_pipeline.naming import SOUNDTRACK_GROUP
from musicgen_pipeline.partition_store import write_json_atomic
from musicgen_pipeline.report import expected_duration, summary_row
from musicgen_pipeline.report import transition_report as build_report
from musicgen_pipeline.request import SoundtrackRequest
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
    soundtrack_request: SoundtrackRequest,
    scene_segments: list[SceneSegment],
    soundtrack: Soundtrack,
    settings: SettingsResource,
):
    request, config = soundtrack_request, settings.resolved
    files = settings.store.files(context.partition_key)
    report = build_report(
        context.partition_key,
        request,
        scene_segments,
        soundtrack,
        quality_loop=config.use_quality_loop,
        max_regen_attempts=config.max_regen_attempts,
    )
    path = write_json_atomic(files.report, report)
    summary = summary_row(
        context.partition_key,
        request,
        scene_segments,
        soundtrack,
        report_path=str(path),
        run_id=context.run.run_id,
        run_seconds=_run_seconds(context),
    )
    write_json_atomic(files.summary, summary)  # last: marks the partition rendered
    transitions, failing = soundtrack.transitions, soundtrack.failing
    exhausted = [s.index for s in scene_segments if s.exhausted]
    expected, tolerance = expected_duration(request, soundtrack.sample_rate)
    actual = soundtrack.duration

    key = context.partition_key
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
        passed=not exhausted,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{key}: "
        + (
            f"scene(s) {', '.join(str(i + 1) for i in exhausted)} kept a failing attempt (WARN)"
            if exhausted
            else f"converged after {summary['regenerations']} regeneration(s)"
        ),
        metadata={
            **judged,
            "exhausted_scenes": ", ".join(str(i + 1) for i in exhausted) or "none",
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
