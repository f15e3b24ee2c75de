"""The generation state of a soundtrack partition: its scenes' attempts on disk, their seeds, and the
quality loop that accepts one attempt per scene. Plain Python (no Dagster): the `scene_segments` asset
(one partition, the loop's regenerations as Dagster retries: `RegenerateScene`) and the bulk pass
(`bulk_generation`, several partitions batched) drive the same state, so both write the same files.

Per scene i and attempt a (seed = request seed + 1000 * i + a: `seed_for`, so a regeneration uses "the
next seed"), ``generation/<fingerprint>/scene_ii/attempt_aa.{wav,codes.npy,json}`` is written before
the attempt is judged (`save_attempt`, the one writer), and ``.../scene_ii/accepted.json`` once the
scene is settled. So a retried step or a re-executed bulk run resumes: accepted scenes and existing
attempts are loaded, only what is missing is generated. The fingerprint (`generation_fingerprint`)
covers prompts, durations, seed, model, sampling settings and loop settings, so changing any of them
starts afresh. `SegmentGenerator.run` is the single render's loop (see `scene_segments` for the rules).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from musicgen_pipeline.audio.io import Audio
from musicgen_pipeline.media import read_exact, write_exact
from musicgen_pipeline.partition_store import PartitionFiles
from musicgen_pipeline.quality import judge_seam, quality_thresholds, transition_options
from musicgen_pipeline.request import MAX_SEED, SoundtrackRequest
from musicgen_pipeline.settings import Settings

if TYPE_CHECKING:
    from musicgen_pipeline.resources import MusicGenResource

SEED_STRIDE = 1000  # seed of scene i, attempt a = request seed + SEED_STRIDE * i + a


def seed_for(request_seed: int, scene: int, attempt: int) -> int:
    return (request_seed + SEED_STRIDE * scene + attempt) % (MAX_SEED + 1)


@dataclass
class Attempt:
    scene: int
    attempt: int
    seed: int
    prompt: str
    seconds: float  # wall time of the generate call (shared by a batch)
    batch: int  # rows in that call
    model_id: str
    scores: dict[str, Any] | None  # None for scene 0 or with the quality loop off
    passed: bool | None
    failures: int  # metrics outside their threshold
    badness: float  # how far past the thresholds (0 when passed); the best attempt has the least

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def scene_dir(state: Path, scene: int) -> Path:
    path = state / f"scene_{scene:02d}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def attempt_files(state: Path, scene: int, attempt: int) -> tuple[Path, Path, Path]:
    stem = scene_dir(state, scene) / f"attempt_{attempt:02d}"
    return stem.with_suffix(".wav"), stem.with_name(stem.name + ".codes.npy"), stem.with_suffix(".json")


def best_attempt(attempts: list[Attempt]) -> Attempt:
    """The attempt kept when none passed: fewest failing metrics, then least badness, then the earliest."""
    return min(attempts, key=lambda r: (r.failures, r.badness, r.attempt))


def save_attempt(state: Path, scene: int, attempt: int, result: Any, batch: int) -> Attempt:
    """Write a generated attempt of `scene` (its audio, codes and record, not judged yet) where the
    generation state keeps it; `batch`: the rows of the model call that made it. Its record."""
    wav, codes, meta = attempt_files(state, scene, attempt)
    write_exact(wav, result.audio)
    np.save(codes, result.codes)
    record = Attempt(
        scene=scene,
        attempt=attempt,
        seed=result.seed,
        prompt=result.prompt,
        seconds=float(result.seconds),
        batch=batch,
        model_id=result.model_id,
        scores=None,
        passed=None,
        failures=0,
        badness=0.0,
    )
    meta.write_text(json.dumps(record.to_dict(), indent=2), encoding="utf-8")
    return record


def load_attempts(state: Path, scene: int) -> list[Attempt]:
    out = [
        Attempt(**json.loads(p.read_text(encoding="utf-8")))
        for p in scene_dir(state, scene).glob("attempt_*.json")
    ]
    return sorted(out, key=lambda a: a.attempt)


def load_generated(state: Path, record: Attempt) -> Any:
    from musicgen_pipeline.models.musicgen import GeneratedAudio

    wav, codes, _ = attempt_files(state, record.scene, record.attempt)
    return GeneratedAudio(
        audio=read_exact(wav),
        codes=np.load(codes),
        prompt=record.prompt,
        seed=record.seed,
        seconds=record.seconds,
        model_id=record.model_id,
    )


def accepted_path(state: Path, scene: int) -> Path:
    return scene_dir(state, scene) / "accepted.json"


def cut_generated(result: Any, seconds: float, model: Any) -> Any:
    """A generated row cut to `seconds` (audio samples and the code frames behind them)."""
    samples = round(seconds * result.audio.sample_rate)
    frames = math.ceil(seconds * model.frame_rate)
    audio = Audio(result.audio.samples[:, :samples], result.audio.sample_rate)
    return replace(result, audio=audio, codes=result.codes[:, :frames])


def generation_fingerprint(
    request: SoundtrackRequest, model_id: str, params: Any, loop: dict[str, Any]
) -> str:
    """Everything that decides the generated audio and the loop's verdicts. The attempts of a partition
    live under ``generation/<fingerprint>/``: a retry (same fingerprint) resumes them, a change of model,
    sampling settings or thresholds starts afresh instead of reusing audio made another way."""
    data = {
        "prompts": request.scene_prompts(),
        "durations": [s.duration for s in request.scenes],
        "seed": request.seed,
        "conditioning": request.scene_conditioning,
        "model": model_id,
        "params": asdict(params),
        "loop": loop,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]


class RegenerateScene(Exception):
    """Scene `scene`'s new attempt failed its seam and has regenerations left: the step is to be
    retried (`scene_segments` raises Dagster's ``RetryRequested(max_retries=...)``); the retried step
    resumes from the files and generates the next attempt."""

    def __init__(self, scene: int, *, max_retries: int) -> None:
        super().__init__(f"scene {scene}: regenerate (step retries allowed: {max_retries})")
        self.scene = scene
        self.max_retries = max_retries


class SegmentGenerator:
    """The generation state of one partition, on disk; one instance per step execution (`log`: the
    step's logger, anything with ``info`` / ``warning``; `musicgen`: the run's `MusicGenResource`)."""

    def __init__(
        self,
        log: Any,
        request: SoundtrackRequest,
        musicgen: MusicGenResource,
        settings: Settings,
        files: PartitionFiles,
    ):
        self.log = log
        self.request = request
        self.files = files
        self.settings = settings
        self.prompts = request.scene_prompts()
        self.loop = self.settings.use_quality_loop and len(request.scenes) > 1
        self.budget = self.settings.max_regen_attempts if self.loop else 0
        self._musicgen = musicgen
        self._model: Any = None
        self.load_seconds = 0.0
        self.generated_now: set[tuple[int, int]] = set()
        self.options = transition_options(request, self.settings)
        from musicgen_pipeline.audio.timeline import scene_generation_seconds

        # Each scene is generated longer than its share of the track (half a crossfade per shared seam,
        # beat-snapping and tempo-stretch slack) so the soundtrack lasts exactly the requested total with
        # every seam centred on its scene boundary; the mix trims the end.
        self.seconds = scene_generation_seconds([s.duration for s in request.scenes], self.options)
        self.thresholds = quality_thresholds(self.settings)
        from musicgen_pipeline.model_options import generation_params

        self.params = generation_params(self.settings)
        loop = {
            "enabled": self.loop,
            "budget": self.budget,
            "thresholds": self.thresholds.to_dict(),
            "options": self.options.to_dict(),
            "generated_seconds": self.seconds,
        }
        model_id = musicgen.resolved(settings, request.model)[0]
        self.melody: Audio | None = None
        if request.melody:
            from musicgen_pipeline.audio.io import read_audio

            self.melody = read_audio(request.melody)
            stat = Path(request.melody).stat()
            loop["melody"] = [request.melody, stat.st_size, stat.st_mtime_ns]
        self.fingerprint = generation_fingerprint(request, model_id, self.params, loop)
        self.state = self.files.generation_dir(self.fingerprint)

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model, self.load_seconds = self._musicgen.get(self.settings, self.request.model)
        return self._model

    def _groups(self, scenes: list[int], batched: bool) -> dict[float, list[int]]:
        """Scenes per generate call. Batched (independent first attempts): one call at the longest
        duration when it fits one model window (rows are seeded and sampled independently, so a row's
        first frames do not depend on how long the call runs; each row is then cut to its scene's
        length); else one call per distinct duration."""
        from musicgen_pipeline.models.params import WINDOW_SECONDS

        longest = max(self.seconds[i] for i in scenes)
        if batched and longest <= min(WINDOW_SECONDS, self.params.window_seconds):
            return {longest: list(scenes)}
        groups: dict[float, list[int]] = {}
        for i in scenes:
            groups.setdefault(self.seconds[i], []).append(i)
        return groups

    def generate(
        self,
        scenes: list[int],
        attempt_of: dict[int, int],
        previous: dict[int, Any],
        *,
        batched: bool = False,
    ) -> None:
        """Generate the given attempts (batched where possible); persists every attempt before returning."""
        params = self.params
        for duration, group in self._groups(scenes, batched).items():
            seeds = [seed_for(self.request.seed, i, attempt_of[i]) for i in group]
            conts = [previous.get(i) for i in group]
            self.log.info(
                f"generating scene(s) {group} ({duration:g} s, seeds {seeds}, attempts {[attempt_of[i] for i in group]})"
            )
            results = self.model.generate(
                [self.prompts[i] for i in group],
                duration,
                seeds=seeds,
                params=params,
                continue_from=conts if any(c is not None for c in conts) else None,
                melody=self.melody,
            )
            for i, result in zip(group, results, strict=True):
                if self.seconds[i] < duration:
                    result = cut_generated(result, self.seconds[i], self.model)
                save_attempt(self.state, i, attempt_of[i], result, len(group))
                self.generated_now.add((i, attempt_of[i]))

    def judge(self, record: Attempt, previous_audio: Audio | None) -> Attempt:
        """Score the attempt's seam into the previous scene (once; stored in its json)."""
        if record.scores is not None or previous_audio is None or not self.loop:
            return record
        wav, _, meta = attempt_files(self.state, record.scene, record.attempt)
        verdict = judge_seam(previous_audio, read_exact(wav), self.options, self.thresholds)
        record.scores, record.passed = verdict.scores, verdict.passed
        record.failures, record.badness = verdict.failures, verdict.badness
        meta.write_text(json.dumps(record.to_dict(), indent=2), encoding="utf-8")
        return record

    def accept(
        self,
        scene: int,
        chosen: Attempt,
        attempts: list[Attempt],
        exhausted: bool,
        previous_audio: Audio | None,
    ) -> dict[str, Any]:
        """Settle `scene` on `chosen` (one of `attempts`; `exhausted`: none passed): every attempt is judged
        first, so the entry lists their scores; writes ``scene_ii/accepted.json``. The entry."""
        for a in attempts:
            self.judge(a, previous_audio)
        entry = {
            "index": scene,
            "record": chosen.to_dict(),
            "attempts": [a.to_dict() for a in attempts],
            "regenerations": len(attempts) - 1,
            "exhausted": exhausted,
        }
        accepted_path(self.state, scene).write_text(json.dumps(entry, indent=2), encoding="utf-8")
        return entry

    def run(self) -> list[dict[str, Any]]:
        n = len(self.request.scenes)
        accepted: list[dict[str, Any]] = []
        if self.request.scene_conditioning == "independent":
            missing = [
                i
                for i in range(n)
                if not accepted_path(self.state, i).exists() and not load_attempts(self.state, i)
            ]
            if missing:
                self.generate(missing, dict.fromkeys(missing, 0), {}, batched=True)
        previous_generated: Any = None
        previous_audio: Audio | None = None
        for i in range(n):
            done = accepted_path(self.state, i)
            if done.exists():
                entry = json.loads(done.read_text(encoding="utf-8"))
                accepted.append(entry)
                record = Attempt(**entry["record"])
                previous_generated = load_generated(self.state, record)
                previous_audio = previous_generated.audio
                continue
            attempts = load_attempts(self.state, i)
            cont = previous_generated if self.request.scene_conditioning == "continuation" else None
            while True:
                if not attempts:
                    self.generate([i], {i: 0}, {i: cont})
                    attempts = load_attempts(self.state, i)
                last = self.judge(attempts[-1], previous_audio if i > 0 else None)
                if last.passed is not False:
                    chosen, exhausted = last, False
                    break
                regenerations = len(attempts) - 1
                if regenerations >= self.budget:
                    chosen, exhausted = best_attempt(attempts), True
                    self.log.warning(
                        f"scene {i}: no attempt passed after {regenerations} regeneration(s); keeping attempt "
                        f"{chosen.attempt} (seed {chosen.seed}, {chosen.failures} failing metric(s))"
                    )
                    break
                if (i, last.attempt) in self.generated_now:
                    self.log.warning(
                        f"scene {i} attempt {last.attempt} (seed {last.seed}) failed the transition thresholds "
                        f"{last.scores}; retrying with seed {seed_for(self.request.seed, i, last.attempt + 1)} "
                        f"({regenerations + 1}/{self.budget})"
                    )
                    raise RegenerateScene(i, max_retries=self.budget * (n - 1))
                # resumed after a retry: the failing attempt is on disk, make the next one
                self.generate([i], {i: last.attempt + 1}, {i: cont})
                attempts = load_attempts(self.state, i)
            entry = self.accept(i, chosen, attempts, exhausted, previous_audio if i > 0 else None)
            accepted.append(entry)
            previous_generated = load_generated(self.state, chosen)
            previous_audio = previous_generated.audio
        return accepted
