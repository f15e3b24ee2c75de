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
from musicgen_pipeline.report import (
    Verdict,
    duration_verdict,
    exhausted_scenes,
    expected_duration,
    failures_text,
    loop_verdict,
    seams_verdict,
    summary_row,
)
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
SCORE_COLUMNS = [
    ("seam", "int", "seam number (1 = between scenes 1 and 2)"),
    ("centre_seconds", "float", "centre of the crossfade in the track"),
    ("mfcc_similarity", "float", "passes above MFCC_SIMILARITY_MIN"),
    ("spectral_flux", "float", "passes below SPECTRAL_FLUX_MAX"),
    ("chroma_correlation", "float", "passes above CHROMA_CORRELATION_MIN"),
    ("energy_ratio", "float", "passes below ENERGY_RATIO_MAX"),
    ("clicks", "int", "clicks found in the crossfade"),
    ("verdict", "string", "pass, or FAIL with the failing scores"),
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
    key, request, config = context.partition_key, soundtrack_request, settings.resolved
    files = settings.store.files(key)
    report = build_report(
        key,
        request,
        scene_segments,
        soundtrack,
        quality_loop=config.use_quality_loop,
        max_regen_attempts=config.max_regen_attempts,
    )
    path = write_json_atomic(files.report, report)
    summary = summary_row(
        key,
        request,
        scene_segments,
        soundtrack,
        report_path=str(path),
        run_id=context.run.run_id,
        run_seconds=_run_seconds(context),
    )
    write_json_atomic(files.summary, summary)  # last: marks the partition rendered
    listen = listen_link(config.listen_url, key, "scores")
    metadata = {
        "listen": listen,
        "report_file": dg.MetadataValue.path(str(path)),
        "summary_file": dg.MetadataValue.path(str(files.summary)),
        "transitions": len(soundtrack.transitions),
        "failing": len(soundtrack.failing),
        "regenerations": summary["regenerations"],
        "scores": table(SCORE_COLUMNS, [_score_row(t) for t in soundtrack.transitions]),
    }
    yield dg.Output(report, metadata=metadata)
    judged = {"partition": key, "listen": listen}
    yield _seams_check(key, soundtrack, judged)
    yield _loop_check(key, scene_segments, summary["regenerations"], config.max_regen_attempts, judged)
    yield _duration_check(key, request, soundtrack, judged)


def _score_row(t: dict) -> dict:
    return {
        "seam": t["index"] + 1,
        "centre_seconds": ms(t["boundary_time"]),
        "mfcc_similarity": sig3(t["mfcc_similarity"]),
        "spectral_flux": sig3(t["spectral_flux"]),
        "chroma_correlation": sig3(t["chroma_correlation"]),
        "energy_ratio": sig3(t["energy_ratio"]),
        "clicks": len(t.get("clicks") or []),
        "verdict": "pass" if t["passed"] else "FAIL: " + failures_text(t),
    }


def _result(
    name: str, severity: dg.AssetCheckSeverity, key: str, verdict: Verdict, metadata: dict
) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name,
        passed=verdict.passed,
        severity=severity,
        description=f"{key}: {verdict.text}",
        metadata=metadata,
    )


def _seams_check(key: str, soundtrack: Soundtrack, judged: dict) -> dg.AssetCheckResult:
    failing = soundtrack.failing
    failing_seams = table(
        [("seam", "int", "seam number"), ("failures", "string", "what failed")],
        [{"seam": t["index"] + 1, "failures": failures_text(t)} for t in failing],
    )
    metadata = {**judged, "failing_seams": failing_seams, "seams": len(soundtrack.transitions)}
    return _result(CHECK_SEAMS, dg.AssetCheckSeverity.WARN, key, seams_verdict(soundtrack), metadata)


def _loop_check(
    key: str, segments: list[SceneSegment], regenerations: int, max_regen_attempts: int, judged: dict
) -> dg.AssetCheckResult:
    metadata = {
        **judged,
        "exhausted_scenes": ", ".join(str(i + 1) for i in exhausted_scenes(segments)) or "none",
        "regenerations": regenerations,
        "max_regen_attempts": max_regen_attempts,
    }
    return _result(CHECK_LOOP, dg.AssetCheckSeverity.WARN, key, loop_verdict(segments), metadata)


def _duration_check(
    key: str, request: SoundtrackRequest, soundtrack: Soundtrack, judged: dict
) -> dg.AssetCheckResult:
    expected, tolerance = expected_duration(request, soundtrack.sample_rate)
    metadata = {
        **judged,
        "actual_seconds": ms(soundtrack.duration),
        "expected_seconds": ms(expected),
        "tolerance_seconds": sig3(tolerance),
    }
    return _result(
        CHECK_DURATION, dg.AssetCheckSeverity.ERROR, key, duration_verdict(request, soundtrack), metadata
    )


def _run_seconds(context: AssetExecutionContext) -> float:
    record = context.instance.get_run_record_by_id(context.run.run_id)
    if record is None or record.start_time is None:
        return 0.0
    return max(0.0, time.time() - record.start_time)
