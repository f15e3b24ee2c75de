"""`scene_segments`: MusicGen audio per scene, with the quality loop run through Dagster retries.

Per scene i and attempt a (seed = request seed + 1000 * i + a, so a regeneration uses "the next
seed"), the step writes ``generation/<fingerprint>/scene_ii/attempt_aa.{wav,codes.npy,json}`` before
judging it, and ``.../scene_ii/accepted.json`` once the scene is settled; the accepted audio is copied
to ``segments/scene_ii.wav``. A retried step therefore resumes: it loads accepted scenes and existing
attempts from disk and generates only what is missing. The fingerprint covers prompts, durations,
seed, model, sampling settings and loop settings, so changing any of them starts afresh.

Quality loop (USE_QUALITY_LOOP, MAX_REGEN_ATTEMPTS = M):
- Scene 0 is always accepted. Scene i > 0 is scored against the accepted scene i - 1 (`score_seam`
  on the seam the crossfade will make). A failing attempt that has regenerations left raises
  `RetryRequested`; the retried step generates attempt a + 1 of that scene.
- The budget is per seam: each scene gets at most M regenerations (M + 1 attempts). A seam that never
  passes therefore costs exactly M step retries, and a request whose k seams never pass costs k * M
  retries (the `max_retries` given to Dagster is M * (scenes - 1), never the binding limit).
- After the last attempt the best attempt (fewest failed metrics, then least badness) is accepted,
  the run goes on, and the transition report's check warns.

The generation state and the loop are `scene_attempts.SegmentGenerator` (plain Python, shared with
the bulk pass); this asset turns its `RegenerateScene` into Dagster's `RetryRequested`.

Bulk rendering: `scene_generation` (group ``bulk``, upstream of this asset, not in the render job)
settles several partitions' generation state in one batched pass, writing exactly these files; this
step then finds every scene accepted and only copies, pictures and reports them.

Conditioning (`scene_conditioning`): `continuation` generates scenes in order, each first window
conditioned on the last codes of the accepted previous scene (token level); `independent` generates
the first attempt of every scene in one batched call per distinct duration, then runs the same loop.
"""

import time
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from musicgen_pipeline.artifacts import SceneSegment
from musicgen_pipeline.defs.metadata import SPEED_KEY, listen_link, ms, sig3, speed, table
from musicgen_pipeline.defs.partitions import soundtrack_partitions
from musicgen_pipeline.gpu_runs import GPU_POOL
from musicgen_pipeline.media import read_exact, save_picture, write_exact
from musicgen_pipeline.naming import SOUNDTRACK_GROUP
from musicgen_pipeline.request import SoundtrackRequest
from musicgen_pipeline.resources import MusicGenResource, SettingsResource
from musicgen_pipeline.scene_attempts import Attempt, RegenerateScene, SegmentGenerator, attempt_files

MAX_EMBEDDED_PICTURES = 12  # inline PNGs in one event (~100 kB each); the rest are linked by path


@dg.asset(
    partitions_def=soundtrack_partitions,
    group_name=SOUNDTRACK_GROUP,
    pool=GPU_POOL,
    kinds={"pytorch"},
    # bulk rendering: when a bulk run (or a backfill) made this partition's scenes in `scene_generation`,
    # this step finds them settled on disk and generates nothing; a single render never runs that asset
    deps=[dg.AssetKey("scene_generation")],
    description="MusicGen audio of every scene (token-level continuation or one batched pass), with the "
    "quality loop: a scene whose seam fails the thresholds is regenerated with the next seed via a Dagster retry. "
    "Scenes a bulk run already made (scene_generation) are taken as they are.",
)
def scene_segments(
    context: AssetExecutionContext,
    soundtrack_request: SoundtrackRequest,
    musicgen: MusicGenResource,
    settings: SettingsResource,
) -> list[SceneSegment]:
    request = soundtrack_request
    start = time.perf_counter()
    files = settings.store.files(context.partition_key)
    generator = SegmentGenerator(context.log, request, musicgen, settings.resolved, files)
    try:
        accepted = generator.run()
    except RegenerateScene as retry:  # the quality loop's regeneration = a Dagster step retry
        raise dg.RetryRequested(max_retries=retry.max_retries, seconds_to_wait=0) from retry
    segments: list[SceneSegment] = []
    pictures: dict[str, Any] = {}
    rows = []
    for entry in accepted:
        record = Attempt(**entry["record"])
        i = record.scene
        wav, _, _ = attempt_files(generator.state, i, record.attempt)
        audio = read_exact(wav)
        path = write_exact(files.segment_path(i), audio)
        picture, md = save_picture(
            audio, f"scene {i}: {record.prompt[:60]}", files.pictures_dir() / f"scene_{i:02d}.png"
        )
        if i < MAX_EMBEDDED_PICTURES:  # every picture is a file; the first ones are also shown inline
            pictures[f"scene_{i}_picture"] = dg.MetadataValue.md(md)
        rtf = record.seconds / record.batch / max(audio.duration, 1e-9)
        segments.append(
            SceneSegment(
                index=i,
                path=str(path),
                prompt=record.prompt,
                seed=record.seed,
                attempt=record.attempt,
                regenerations=entry["regenerations"],
                exhausted=entry["exhausted"],
                scores=record.scores,
                passed=record.passed,
                attempts=tuple(entry["attempts"]),
                duration=audio.duration,
                scene_seconds=request.scenes[i].duration,
                sample_rate=audio.sample_rate,
                seconds=record.seconds,
                real_time_factor=rtf,
                model_id=record.model_id,
                picture=str(picture),
            )
        )
        verdict = "-" if record.passed is None else ("pass" if record.passed else "FAIL (best kept)")
        rows.append(
            {
                "scene": i + 1,
                "seconds": ms(audio.duration),
                "seed": record.seed,
                "regenerations": entry["regenerations"],
                "seam": verdict,
                SPEED_KEY: sig3(1.0 / rtf) if rtf > 0 else 0.0,
                "file": str(path),
            }
        )
    elapsed = time.perf_counter() - start
    total_audio = sum(s.duration for s in segments)
    context.add_output_metadata(
        {
            "model": segments[0].model_id if segments else (request.model or ""),
            "scene_conditioning": request.scene_conditioning,
            "scenes": len(segments),
            "listen": listen_link(settings.resolved.listen_url, context.partition_key, "segments"),
            "audio_seconds": ms(total_audio),
            "step_seconds": ms(elapsed),
            "model_load_seconds": ms(generator.load_seconds),
            **speed(total_audio, elapsed),
            "regenerations": sum(s.regenerations for s in segments),
            "retry_number": context.retry_number,
            "segments": table(
                [
                    ("scene", "int", "scene number (1 = first)"),
                    ("seconds", "float", "generated seconds (with the margin for the seams)"),
                    ("seed", "int", "seed of the kept attempt"),
                    ("regenerations", "int", "attempts after the first"),
                    ("seam", "string", "the seam into the previous scene: pass, FAIL (best kept), - (first)"),
                    (
                        SPEED_KEY,
                        "float",
                        "seconds of audio per wall-clock second (above 1: faster than real time)",
                    ),
                    ("file", "string", "the segment's WAV"),
                ],
                rows,
            ),
            **{f"scene_{s.index + 1}_file": dg.MetadataValue.path(s.path) for s in segments},
            **pictures,
        }
    )
    return segments
