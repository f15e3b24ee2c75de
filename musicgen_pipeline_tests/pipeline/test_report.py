"""`report`: the checks' verdicts and the report/summary rows, from typed values (no Dagster run)."""

from __future__ import annotations

from dataclasses import replace

from musicgen_pipeline.artifacts import SceneSegment, Soundtrack
from musicgen_pipeline.report import (
    Verdict,
    duration_verdict,
    loop_verdict,
    seams_verdict,
    summary_row,
    transition_report,
)
from musicgen_pipeline.request import parse_request

REQUEST = parse_request(
    {
        "base_prompt": "p",
        "scenes": [{"mood": "a", "duration": 2.0}, {"mood": "b", "duration": 3.0}],
        "crossfade_duration": 0.5,
    }
)
RATE = 32000


def _segment(index: int, *, regenerations: int = 0, exhausted: bool = False) -> SceneSegment:
    return SceneSegment(
        index=index,
        path=f"scene_{index:02d}.wav",
        prompt="p",
        seed=index,
        attempt=regenerations,
        regenerations=regenerations,
        exhausted=exhausted,
        scores=None,
        passed=None,
        attempts=({"attempt": 0, "seed": index, "passed": None, "scores": None},),
        duration=4.0,
        scene_seconds=2.0,
        sample_rate=RATE,
        seconds=1.0,
        real_time_factor=0.25,
        model_id="tiny-random",
        picture="scene.png",
    )


def _soundtrack(duration: float, *failures: list[str]) -> Soundtrack:
    failing = list(failures[0]) if failures else []
    rows = [{"index": 0, "passed": not failing, "failures": failing, "thresholds": {"energy_ratio_max": 2.0}}]
    return Soundtrack(
        path="soundtrack.wav",
        format="wav",
        duration=duration,
        requested_seconds=5.0,
        expected_seconds=5.0,
        joined_seconds=5.5,
        sample_rate=RATE,
        channels=2,
        target_bpm=120.0,
        loudness={"output_lufs": -14.0},
        transitions=tuple(rows),
        mix_seconds=0.5,
        picture="soundtrack.png",
    )


def test_seams_verdict_names_each_failing_seam() -> None:
    assert seams_verdict(_soundtrack(5.0)) == Verdict(True, "1/1 seams pass (WARN)")
    failed = seams_verdict(_soundtrack(5.0, ["mfcc_similarity 0.41 < 0.5", "click"]))
    assert (failed.passed, failed.text) == (
        False,
        "0/1 seams pass; seam 1: mfcc_similarity 0.41 < 0.5; click (WARN)",
    )


def test_loop_verdict_names_exhausted_scenes_or_counts_regenerations() -> None:
    converged = loop_verdict([_segment(0), _segment(1, regenerations=2)])
    assert (converged.passed, converged.text) == (True, "converged after 2 regeneration(s)")
    exhausted = loop_verdict([_segment(0, exhausted=True), _segment(1), _segment(2, exhausted=True)])
    assert (exhausted.passed, exhausted.text) == (False, "scene(s) 1, 3 kept a failing attempt (WARN)")


def test_duration_verdict_allows_one_frame() -> None:
    frame = 1.0 / RATE
    assert duration_verdict(REQUEST, _soundtrack(5.0 - 0.9 * frame)).passed
    late = duration_verdict(REQUEST, _soundtrack(5.0 + 1.1 * frame))
    assert not late.passed
    assert late.text == "5.000 s for 5.000 s requested, off by +0.000 s (ERROR)"
    short = duration_verdict(REQUEST, _soundtrack(4.5))
    assert short.text == "4.500 s for 5.000 s requested, off by -0.500 s (ERROR)"


def test_report_and_summary_rows() -> None:
    segments = [_segment(0), replace(_segment(1, regenerations=1), seconds=1.0)]
    soundtrack = _soundtrack(5.0, ["energy_ratio 3.1 > 2"])
    report = transition_report("key", REQUEST, segments, soundtrack, quality_loop=True, max_regen_attempts=3)
    assert report["passed"] is False
    assert report["thresholds"] == {"energy_ratio_max": 2.0}
    assert report["duration"] == {"actual": 5.0, "expected": 5.0, "tolerance": 1.0 / RATE, "requested": 5.0}
    assert [s["regenerations"] for s in report["quality_loop"]["scenes"]] == [0, 1]
    row = summary_row(
        "key", REQUEST, segments, soundtrack, report_path="r.json", run_id="id", run_seconds=10.0
    )
    assert (row["transitions"], row["transitions_passed"], row["regenerations"]) == (1, 0, 1)
    assert (row["real_time_factor"], row["total_seconds"]) == (2.0, 10.0)
    assert row["generation_seconds"] == 2.0
