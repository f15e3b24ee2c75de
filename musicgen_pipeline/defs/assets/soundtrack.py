"""`soundtrack`: the final mix, from the aligned segments, the seam plans and their stems.

`render_track` mixes the seams as `join` does: each incoming segment arrives at the outgoing one's
level and glides to its own after the overlap, each overlap is rendered (stem-aware crossfade:
drums/other/vocals equal-power, bass swapped on a beat; or a plain equal-power crossfade; held at its
sides' level), and the pieces are joined; each
seam is scored on the joined track (`score_transition`), the track is cut to exactly the requested total
(sum of the scene durations; `fit_to_length`, ending in a short fade-out: scenes are generated with
audio to spare, so the last one always overruns unless tempo stretch ate more than the margin), and the
whole track is loudness-normalised
(ITU-R BS.1770, TARGET_LUFS, true peak under TRUE_PEAK_DBTP) and written as
``outputs/<partition>/soundtrack.<format>`` (16-bit PCM WAV by default).
"""

import time

import dagster as dg
import numpy as np
from dagster import AssetExecutionContext

from musicgen_pipeline.artifacts import AlignedTrack, Seam, Soundtrack
from musicgen_pipeline.audio.atomic_write import write_audio_atomic
from musicgen_pipeline.audio.loudness import normalize_loudness
from musicgen_pipeline.audio.metrics import score_transition
from musicgen_pipeline.audio.seam_render import render_track
from musicgen_pipeline.audio.timeline import fit_to_length
from musicgen_pipeline.defs.metadata import listen_link, ms, sig3
from musicgen_pipeline.defs.partitions import soundtrack_partitions
from musicgen_pipeline.media import read_exact, save_picture
from musicgen_pipeline.naming import SOUNDTRACK_GROUP
from musicgen_pipeline.quality import quality_thresholds, transition_options
from musicgen_pipeline.request import SoundtrackRequest
from musicgen_pipeline.resources import SettingsResource


def _stems(paths: dict[str, str]) -> dict[str, np.ndarray] | None:
    return {name: read_exact(path).samples for name, path in paths.items()} if paths else None


@dg.asset(
    partitions_def=soundtrack_partitions,
    group_name=SOUNDTRACK_GROUP,
    kinds={"wav"},
    description="The finished soundtrack: stem-aware beat-aligned crossfades, scored seams, loudness-normalised.",
)
def soundtrack(
    context: AssetExecutionContext,
    soundtrack_request: SoundtrackRequest,
    aligned_segments: AlignedTrack,
    segment_stems: list[Seam],
    settings: SettingsResource,
) -> Soundtrack:
    request = soundtrack_request
    config = settings.resolved
    files = settings.store.files(context.partition_key)
    start = time.perf_counter()
    audios = [read_exact(s.path) for s in aligned_segments.segments]
    plans = [seam.plan for seam in segment_stems]
    track, seams, steps = render_track(
        audios,
        plans,
        [(_stems(seam.prev), _stems(seam.next)) for seam in segment_stems],
        transition_options(request, config).level_glide_seconds,
    )
    joined_seconds = track.duration
    wanted = round(request.total_duration * track.sample_rate)
    track = fit_to_length(track, wanted)
    if track.frames < wanted:
        context.log.warning(
            f"soundtrack is {track.duration:.3f} s, {request.total_duration - track.duration:.3f} s short of the "
            f"requested {request.total_duration:g} s: tempo stretch left the segments shorter than their margin; "
            f"the duration check reports it"
        )
    thresholds = quality_thresholds(config)
    sr = track.sample_rate
    transitions = []
    for t, ((s0, s1), plan, seam) in enumerate(zip(seams, plans, segment_stems, strict=True)):
        scores = score_transition(track, s0, s1, thresholds)
        stem_aware = plan.stem_aware and seam.separated
        transitions.append(
            {
                "index": t,
                "boundary_time": round((s0 + s1) / 2 / sr, 4),
                "target_time": seam.target_time,
                "overlap_start_time": round(s0 / sr, 4),
                "overlap_seconds": round((s1 - s0) / sr, 4),
                "bpm_before": round(plan.prev_bpm, 3),
                "bpm_after": round(plan.next_bpm, 3),
                "bass_swap_time": round((s0 + plan.bass_swap) / sr, 4)
                if stem_aware and plan.bass_swap is not None
                else None,
                "beat_aligned": plan.beat_aligned,
                "stem_aware": stem_aware,
                "level_step_db": round(steps[t], 2),
                **scores.to_dict(),
            }
        )
    normalised, loudness = normalize_loudness(track, config.target_lufs, config.true_peak_dbtp)
    path = write_audio_atomic(
        files.soundtrack_path(request.output_format), normalised, format=request.output_format
    )
    picture, md = save_picture(
        normalised, f"soundtrack ({normalised.duration:.1f} s)", files.pictures_dir() / "soundtrack.png"
    )
    elapsed = time.perf_counter() - start
    passed = sum(1 for t in transitions if t["passed"])
    result = Soundtrack(
        path=str(path),
        format=request.output_format,
        duration=normalised.duration,
        requested_seconds=request.total_duration,
        expected_seconds=request.expected_duration,
        joined_seconds=joined_seconds,
        sample_rate=sr,
        channels=normalised.channels,
        target_bpm=aligned_segments.target_bpm,
        loudness=loudness.to_dict(),
        transitions=tuple(transitions),
        mix_seconds=elapsed,
        picture=str(picture),
    )
    context.add_output_metadata(
        {
            "listen": listen_link(config.listen_url, context.partition_key),
            "soundtrack_file": dg.MetadataValue.path(str(path)),
            "duration_seconds": ms(normalised.duration),
            "requested_seconds": ms(request.total_duration),
            "expected_seconds": ms(request.expected_duration),
            "joined_seconds_before_trim": ms(joined_seconds),
            "target_bpm": sig3(aligned_segments.target_bpm),
            "loudness_lufs": sig3(loudness.to_dict()["output_lufs"]),
            "true_peak_dbtp": sig3(loudness.to_dict()["output_true_peak_dbtp"]),
            "transitions_passed": f"{passed}/{len(transitions)}",
            "mix_seconds": ms(elapsed),
            "picture": dg.MetadataValue.md(md),
            "picture_file": dg.MetadataValue.path(str(picture)),
        }
    )
    return result
