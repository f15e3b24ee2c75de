"""Bulk generation: several requests' scenes generated together, each request's files exactly its own.

`generate_bulk(generators, model, max_batch=...)` drives the generation state of several partitions
(`SegmentGenerator`s: the same `generation/<fingerprint>/scene_ii/attempt_aa.*` files, seeds, seam
judging and acceptance as a single render's `scene_segments`) in lockstep, plan step by plan step:

- `independent` requests: every missing scene's first attempt, all requests together;
- then per scene index k: every request's scene k first attempt in one batched call (a `continuation`
  row continues its own request's accepted scene k-1), then the quality loop's regenerations batched
  across the requests whose seam failed, until every request has accepted (or exhausted) scene k.

Calls go through `MusicGen.generate_rows` in chunks of at most `max_batch` rows; every row is
bit-identical to generating it alone, so a request's attempts (and so its audio) are exactly what its
single render writes; only the bookkeeping differs (`seconds` is the batched call's wall time, `batch`
its row count). `settle_partitions` is the entry of the `scene_generation` asset: it builds each
partition's generator, groups the partitions by model and runs one `generate_bulk` per model. A partition's `scene_segments` step then finds every scene accepted and generates
nothing; a request that failed here (its rows fail even alone, its melody file is unreadable, ...) is
reported in its `BulkOutcome` and left to its own step, which generates what is missing alone and fails
its own partition only. It uses no Dagster API (the `SegmentGenerator`s carry each partition's
settings, files and request).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from musicgen_pipeline.scene_attempts import (
    Attempt,
    SegmentGenerator,
    accepted_path,
    best_attempt,
    cut_generated,
    load_attempts,
    load_generated,
    save_attempt,
    seed_for,
)


@dataclass
class BulkOutcome:
    """What the bulk pass did for one request: its share of generation time, the batch sizes of its
    calls, its generated audio seconds, and the error that stopped it (None when every scene settled)."""

    key: str
    seconds: float = 0.0
    audio_seconds: float = 0.0
    batches: list[int] = field(default_factory=list)
    error: str | None = None

    @property
    def real_time_factor(self) -> float:
        return self.seconds / max(self.audio_seconds, 1e-9)


@dataclass
class _Row:
    job: _Job
    scene: int
    attempt: int
    duration: float
    previous: Any  # GeneratedAudio the row continues, or None


@dataclass
class _Job:
    key: str
    gen: SegmentGenerator
    outcome: BulkOutcome
    previous_generated: Any = None
    previous_audio: Any = None

    @property
    def failed(self) -> bool:
        return self.outcome.error is not None


def generate_bulk(
    generators: dict[str, SegmentGenerator],
    model: Any,
    *,
    max_batch: int,
    log: Callable[[str], None] = lambda message: None,
) -> dict[str, BulkOutcome]:
    """Settle every scene of every request (see the module docstring); one outcome per partition key.

    Every request must use `model` (mixed models are several bulks) and the same sampling settings.
    """
    if len({gen.params for gen in generators.values()}) > 1:
        raise ValueError("generate_bulk: the requests' sampling settings differ (one bulk per settings)")
    jobs = [_Job(key, gen, BulkOutcome(key)) for key, gen in generators.items()]
    first: list[_Row] = []
    for job in jobs:
        gen = job.gen
        if gen.request.scene_conditioning != "independent":
            continue
        n = len(gen.request.scenes)
        missing = [
            i
            for i in range(n)
            if not accepted_path(gen.state, i).exists() and not load_attempts(gen.state, i)
        ]
        if missing:
            for duration, group in gen._groups(missing, batched=True).items():
                first.extend(_Row(job, i, 0, duration, None) for i in group)
    _generate(first, model, max_batch, log)
    for k in range(max((len(job.gen.request.scenes) for job in jobs), default=0)):
        _settle_scene(
            k, [j for j in jobs if k < len(j.gen.request.scenes) and not j.failed], model, max_batch, log
        )
    return {job.key: job.outcome for job in jobs}


def settle_partitions(
    keys: Sequence[str],
    generator_for: Callable[[str], SegmentGenerator],
    *,
    max_batch: int,
    log: Callable[[str], None] = lambda message: None,
) -> dict[str, BulkOutcome]:
    """Settle the generation of every partition in `keys` (what the `scene_generation` asset does for its
    partition range): one `generate_bulk` per model, in the order the models first appear.

    `generator_for(key)` builds the partition's `SegmentGenerator` (its request, settings and files); a
    partition whose generator or model cannot be made (no stored request, unreadable melody file, model
    that does not load) gets an outcome with that error and the others go on.
    """
    outcomes: dict[str, BulkOutcome] = {}
    groups: dict[str, dict[str, SegmentGenerator]] = {}
    models: dict[str, Any] = {}
    for key in keys:
        try:
            gen = generator_for(key)
            model = gen.model  # loaded once per process (the resource caches it)
        except Exception as exc:
            outcomes[key] = BulkOutcome(key, error=f"{type(exc).__name__}: {exc}")
            continue
        models.setdefault(model.model_id, model)
        groups.setdefault(model.model_id, {})[key] = gen
    for model_id, generators in groups.items():
        log(f"bulk: {len(generators)} partition(s) on {model_id}, at most {max_batch} row(s) per call")
        outcomes.update(generate_bulk(generators, models[model_id], max_batch=max_batch, log=log))
    return {key: outcomes[key] for key in keys}


def _settle_scene(k: int, jobs: list[_Job], model: Any, max_batch: int, log: Callable[[str], None]) -> None:
    """Scene k of every job: first attempts together, then batched regenerations, then accepted.json."""
    undecided: list[_Job] = []
    for job in jobs:
        done = accepted_path(job.gen.state, k)
        if done.exists():
            _advance(job, json.loads(done.read_text(encoding="utf-8")))
        else:
            undecided.append(job)
    while undecided:
        need: list[_Row] = []
        still: list[_Job] = []
        for job in undecided:
            if job.failed:
                continue
            try:
                row = _next_attempt(job, k)
            except Exception as exc:  # judging or files: this request only
                job.outcome.error = f"{type(exc).__name__}: {exc}"
                continue
            if row is None:
                continue  # settled (accepted.json written)
            need.append(row)
            still.append(job)
        _generate(need, model, max_batch, log)
        undecided = still


def _next_attempt(job: _Job, k: int) -> _Row | None:
    """The row this job needs next for scene k, or None once scene k is settled (as `SegmentGenerator.run`)."""
    gen = job.gen
    cont = job.previous_generated if gen.request.scene_conditioning == "continuation" else None
    attempts = load_attempts(gen.state, k)
    if not attempts:
        return _Row(job, k, 0, gen.seconds[k], cont)
    previous_audio = job.previous_audio if k > 0 else None
    last = gen.judge(attempts[-1], previous_audio)
    if last.passed is False and len(attempts) - 1 < gen.budget:
        return _Row(job, k, last.attempt + 1, gen.seconds[k], cont)
    exhausted = last.passed is False
    chosen = best_attempt(attempts) if exhausted else last
    _advance(job, gen.accept(k, chosen, attempts, exhausted, previous_audio))
    return None


def _advance(job: _Job, entry: dict[str, Any]) -> None:
    job.previous_generated = load_generated(job.gen.state, Attempt(**entry["record"]))
    job.previous_audio = job.previous_generated.audio


def _generate(rows: list[_Row], model: Any, max_batch: int, log: Callable[[str], None]) -> None:
    """Generate rows in chunks of `max_batch` and persist each as its request's attempt. A chunk that
    fails is split in halves until the failing rows are alone, so one request's failure stays its own."""
    from musicgen_pipeline.models.musicgen import GenerationRow

    rows = [r for r in rows if not r.job.failed]
    for start in range(0, len(rows), max_batch):
        chunk = rows[start : start + max_batch]
        specs = [
            GenerationRow(
                prompt=r.job.gen.prompts[r.scene],
                seed=seed_for(r.job.gen.request.seed, r.scene, r.attempt),
                duration=r.duration,
                continue_from=r.previous,
                melody=r.job.gen.melody,
            )
            for r in chunk
        ]
        log(
            f"bulk: {len(chunk)} row(s): "
            + ", ".join(f"{r.job.key} scene {r.scene} attempt {r.attempt}" for r in chunk)
        )
        try:
            results = model.generate_rows(specs, params=chunk[0].job.gen.params, max_batch=max_batch)
        except Exception as exc:
            if len(chunk) == 1:
                chunk[0].job.outcome.error = f"{type(exc).__name__}: {exc}"
                continue
            # find who fails by halves (a row's result does not depend on its batch): the rows of the
            # half that works stay batched, and a failing row ends up alone, failing its request only
            half = len(chunk) // 2
            _generate(chunk[:half], model, max_batch, log)
            _generate(chunk[half:], model, max_batch, log)
            continue
        for row, result in zip(chunk, results, strict=True):
            # `result.seconds` is the wall time of the model call that made this row and `result.batch`
            # its rows (the model may split a chunk by window structure): the row's share of that call
            batch = int(getattr(result, "batch", len(chunk)) or len(chunk))
            _persist(row, result, batch, model)
            row.job.outcome.seconds += float(result.seconds) / batch
            row.job.outcome.audio_seconds += row.job.gen.seconds[row.scene]
            row.job.outcome.batches.append(batch)


def _persist(row: _Row, result: Any, batch: int, model: Any) -> None:
    """Write the attempt exactly as `SegmentGenerator.generate` does."""
    gen = row.job.gen
    if gen.seconds[row.scene] < row.duration:
        result = cut_generated(result, gen.seconds[row.scene], model)
    save_attempt(gen.state, row.scene, row.attempt, result, batch)
