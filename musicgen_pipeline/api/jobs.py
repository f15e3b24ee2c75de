"""REST jobs on top of Dagster runs.

A job id is the uuid4 of its Dagster run (the run id itself), so a job survives a restart of the
REST process: everything about its state is read back from the Dagster instance and the partition's
files. The REST layer adds only a small immutable record per job (`$MUSICGEN_DATA/api/jobs/<id>.json`:
type, partition, scene count, stem mode), written when the job is created.

- `generate` / `soundtrack`: a soundtrack request registered as a `soundtrack_requests` partition and
  rendered by `launch.start_run_detached` (a detached process: the REST process may exit).
- `separate`: a `separation_requests` partition run by the `separate_audio` job
  (`launch.start_job_detached`, same detachment).
- Bounded execution: jobs wait in the run queue (`run_queue`; ``status: queued`` with a
  ``queue_position``) until one of the instance's ``max_concurrent_runs`` run slots frees; beyond
  `api_max_queued_jobs` waiting jobs a submission is refused (`QueueFull`: 503 with Retry-After). The
  server's dispatcher thread starts queued jobs in arrival order, and its reaper fails jobs whose run
  process died (`run_health`), so no job says ``processing`` for ever. `cancel` stops a job.

Status comes from the run service's `launch.RunWatcher` (one per `Jobs`, reading each run's events
incrementally); `progress` and `progress_detail` from the run's finished steps and the scene segment
files written so far (scene n done = `segments/scene_<n>.wav` exists). The partition folders are read
through `PartitionStore`.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from musicgen_pipeline import launch, run_health
from musicgen_pipeline.instance import register_request
from musicgen_pipeline.naming import SEPARATION_JOB, SEPARATION_PARTITIONS_NAME
from musicgen_pipeline.partition_store import PartitionStore, read_json_object
from musicgen_pipeline.request import MAX_SEED, SoundtrackRequest, parse_request, slugify
from musicgen_pipeline.run_queue import RunQueue
from musicgen_pipeline.settings import Settings

if TYPE_CHECKING:
    import dagster as dg

JOB_TYPES = ("generate", "soundtrack", "separate")
UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
FLAT_NAME_RE = re.compile(
    r"^(?P<job>[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})_(?P<name>[a-z]+)\.wav$"
)
STEM_NAMES = {4: ("drums", "bass", "other", "vocals"), 2: ("vocals", "accompaniment")}
# How often the REST server looks for runs whose worker died (their jobs then fail, their slots free).
REAP_INTERVAL_SECONDS = 5.0
JOB_TAG = "musicgen/job_id"
JOB_TYPE_TAG = "musicgen/job_type"
# How long a live job's computed status is reused (many clients polling one job cost one read).
LIVE_STATUS_TTL_SECONDS = 0.5
# A view up to this old is served while a background read refreshes it (busy polling); an older one is
# read before answering (a lone client polling every few seconds sees the current state).
STALE_MAX_SECONDS = 1.5

# Stage of a soundtrack job from the step that runs (asset names of the pipeline).
# (steps before these, `soundtrack_request` and `scene_segments`, are the generating stage)
_CROSSFADING_STEPS = ("beat_grids", "aligned_segments", "segment_stems", "soundtrack")
_FINALIZING_STEPS = ("transition_report", "catalog")
# Share of the progress bar per stage.
_GENERATING_SHARE = 80.0
_CROSSFADING_SHARE = 15.0


def new_job_id() -> str:
    return str(uuid.uuid4())


def is_job_id(value: str) -> bool:
    return bool(UUID4_RE.match(value))


@dataclass(frozen=True)
class JobRecord:
    """What the REST layer remembers of a job (immutable; status lives in Dagster)."""

    job_id: str
    job_type: str
    partition: str
    created_at: float
    total_scenes: int = 0
    stems: int | None = None
    input_path: str | None = None

    def result_names(self) -> tuple[str, ...]:
        if self.job_type == "generate":
            return ("generated",)
        if self.job_type == "soundtrack":
            return ("soundtrack",)
        return STEM_NAMES[self.stems or 4]


@dataclass
class JobView:
    """A job's state as served by `GET /jobs/{id}` plus what the metrics need."""

    job_id: str
    job_type: str
    status: str  # queued | processing | completed | failed
    progress: float = 0.0
    progress_detail: dict[str, Any] | None = None
    result_urls: list[str] | None = None
    error: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    retries: int = 0
    queue_position: int | None = None  # while queued: 1-based place in the run queue
    metrics: dict[str, Any] = field(default_factory=dict)
    _json: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def final(self) -> bool:
        return self.status in ("completed", "failed")

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.started_at)

    def status_json(self) -> bytes:
        """`as_status()` serialised once per view (polls of a cached view cost no encoding)."""
        if self._json is None:
            self._json = json.dumps(self.as_status(), separators=(",", ":")).encode()
        return self._json

    def as_status(self) -> dict[str, Any]:
        status = {
            "job_id": self.job_id,
            "status": self.status,
            "progress": round(float(self.progress), 1),
            "progress_detail": self.progress_detail,
            "result_urls": self.result_urls,
            "error": self.error,
        }
        if self.status == "queued" and self.queue_position is not None:
            status["queue_position"] = self.queue_position  # an addition to the old contract
        return status


def build_request(
    job_type: str, fields: dict[str, Any], nonce: str, *, default_model: str | None = None
) -> SoundtrackRequest:
    """The pipeline request for a REST job; `RequestError` lists every problem the pipeline finds.

    Each job gets its own partition: the request is named after its prompt plus a nonce, and gets a
    random seed unless the client sent one (the old service made a new piece on every call).
    """
    raw = dict(fields)
    if raw.get("seed") is None:
        raw["seed"] = secrets.randbelow(MAX_SEED + 1)
    prompt = str(raw.get("base_prompt") or raw.get("prompt") or "")
    slug = slugify(prompt, max_len=20) or job_type
    raw["name"] = f"{slug}-{nonce[:8]}"
    raw["output_format"] = "wav"
    return parse_request(
        raw,
        source=f"POST /{'generate' if job_type == 'generate' else 'generate/soundtrack'}",
        default_model=default_model,
    )


class Jobs:
    """Creates jobs and reads their state; thread-safe, every method blocking (call from a thread)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = PartitionStore(settings.outputs_dir)
        self.records_dir = settings.data_dir / "api" / "jobs"
        self.uploads_dir = settings.data_dir / "uploads"
        self._instance: dg.DagsterInstance | None = None
        self._watcher: launch.RunWatcher | None = None
        self._queue: RunQueue | None = None
        self.policy = launch.QueuePolicy(
            mode=settings.run_queue,
            code_location=settings.dagster_code_location,
            max_queued=settings.api_max_queued_jobs,
        )
        self._background: threading.Event | None = None
        self._lock = threading.Lock()
        self._records: dict[str, JobRecord] = {}
        self._final: dict[str, JobView] = {}
        self._live: dict[str, tuple[float, JobView]] = {}
        self._job_locks: dict[str, threading.Lock] = {}
        self._refreshing: set[str] = set()

    # --- instance ------------------------------------------------------------------------------
    @property
    def instance(self) -> dg.DagsterInstance:
        from musicgen_pipeline.instance import get_instance

        with self._lock:
            if self._instance is None:
                self._instance = get_instance(self.settings.data_dir)
            return self._instance

    @property
    def queue(self) -> RunQueue:
        """The run queue (bounded: `api_max_queued_jobs` waiting jobs, then 503)."""
        instance = self.instance
        with self._lock:
            if self._queue is None:
                self._queue = launch.run_queue(
                    instance, self.store, max_queued=self.settings.api_max_queued_jobs
                )
            return self._queue

    @property
    def watcher(self) -> launch.RunWatcher:
        instance, queue = self.instance, self.queue
        with self._lock:
            if self._watcher is None:
                self._watcher = launch.RunWatcher(instance, self.store, queue)
            return self._watcher

    # --- background work -----------------------------------------------------------------------
    def start_background(self) -> None:
        """The server's run dispatcher (starts queued jobs as run slots free up) and dead-run reaper."""
        stop = threading.Event()
        self._background = stop
        dispatcher = launch.dispatcher(self.store, self.queue)
        reaper = run_health.Reaper(self.instance, interval=REAP_INTERVAL_SECONDS)

        def dispatch() -> None:
            run_health.reap(self.instance)  # runs killed while no server was up
            while not stop.is_set():
                try:
                    dispatcher.serve(stop.is_set)  # returns at once while another dispatcher works
                except Exception:
                    logging.getLogger(__name__).exception("run dispatcher failed; restarting it")
                stop.wait(1.0)

        reaper.__enter__()
        threading.Thread(target=dispatch, name="run-dispatcher", daemon=True).start()
        self._stop_reaper = reaper

    def stop_background(self) -> None:
        if self._background is not None:
            self._background.set()
            self._stop_reaper.__exit__()

    def cancel(self, job_id: str) -> bool | None:
        """Stop a job (waiting or running); None for an unknown job, False when it already ended."""
        record = self.record(job_id)
        if record is None:
            return None
        stopped = launch.cancel(self.instance, self.store, self.queue, job_id, f"DELETE /jobs/{job_id}")
        with self._lock:
            self._live.pop(job_id, None)
        return stopped

    # --- records -------------------------------------------------------------------------------
    def _save(self, record: JobRecord) -> None:
        self.records_dir.mkdir(parents=True, exist_ok=True)
        path = self.records_dir / f"{record.job_id}.json"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        with self._lock:
            self._records[record.job_id] = record

    def record(self, job_id: str) -> JobRecord | None:
        if not is_job_id(job_id):
            return None
        with self._lock:
            cached = self._records.get(job_id)
        if cached is not None:
            return cached
        path = self.records_dir / f"{job_id}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            known = {f.name for f in dataclass_fields(JobRecord)}
            record = JobRecord(**{k: v for k, v in data.items() if k in known})
        except (OSError, ValueError, TypeError, AttributeError):  # missing, half-written or foreign file
            return None
        with self._lock:
            self._records[job_id] = record
        return record

    def records(self) -> list[JobRecord]:
        if not self.records_dir.exists():
            return []
        out = []
        for path in self.records_dir.glob("*.json"):
            record = self.record(path.stem)
            if record is not None:
                out.append(record)
        return out

    # --- creating jobs -------------------------------------------------------------------------
    def submit_soundtrack(self, job_type: str, request: SoundtrackRequest) -> JobRecord:
        """Register the request as a partition and start its run detached; the run id is the job id."""
        instance = self.instance
        key = register_request(instance, self.store, request)
        run_id = launch.start_run_detached(instance, self.store, key, queue=self.queue, policy=self.policy)
        record = JobRecord(
            job_id=run_id,
            job_type=job_type,
            partition=key,
            created_at=time.time(),
            total_scenes=len(request.scenes),
        )
        self._save(record)
        return record

    def submit_separation(self, job_id: str, input_path: Path, stems: int) -> JobRecord:
        instance = self.instance
        key = f"sep-{job_id}"
        self.store.write_separation_request(key, input_path, stems)
        instance.add_dynamic_partitions(SEPARATION_PARTITIONS_NAME, [key])
        record = JobRecord(
            job_id=job_id,
            job_type="separate",
            partition=key,
            created_at=time.time(),
            stems=stems,
            input_path=str(input_path),
        )
        launch.start_job_detached(
            instance,
            self.store,
            SEPARATION_JOB,
            key,
            job_id,
            {JOB_TAG: job_id, JOB_TYPE_TAG: "separate"},
            queue=self.queue,
            policy=self.policy,
        )
        self._save(record)
        return record

    # --- reading state -------------------------------------------------------------------------
    def cached_view(self, job_id: str) -> JobView | None:
        """The view when it is known without I/O (finished, or read less than the TTL ago); else None.

        Cheap enough for the event loop: the status route answers most polls from here.
        """
        with self._lock:
            final = self._final.get(job_id)
            if final is not None:
                return final
            live = self._live.get(job_id)
        if live is not None and time.monotonic() - live[0] < LIVE_STATUS_TTL_SECONDS:
            return live[1]
        return None

    def stale_view(self, job_id: str, max_age: float = STALE_MAX_SECONDS) -> JobView | None:
        """The last computed view of a live job when at most `max_age` seconds old, else None."""
        with self._lock:
            live = self._live.get(job_id)
        if live is None or time.monotonic() - live[0] > max_age:
            return None
        return live[1]

    def claim_refresh(self, job_id: str) -> bool:
        """True for the one caller that should refresh a stale live view now (the others serve it stale)."""
        with self._lock:
            if job_id in self._refreshing:
                return False
            self._refreshing.add(job_id)
            return True

    def refresh(self, job_id: str) -> None:
        try:
            self.view(job_id)
        finally:
            with self._lock:
                self._refreshing.discard(job_id)

    def view(self, job_id: str) -> JobView | None:
        record = self.record(job_id)
        if record is None:
            return None
        with self._lock:
            final = self._final.get(job_id)
            if final is not None:
                return final
            live = self._live.get(job_id)
            job_lock = self._job_locks.setdefault(job_id, threading.Lock())
        now = time.monotonic()
        if live is not None and now - live[0] < LIVE_STATUS_TTL_SECONDS:
            return live[1]
        with job_lock:  # one reader per job; the others reuse its answer
            with self._lock:
                live = self._live.get(job_id)
            if live is not None and time.monotonic() - live[0] < LIVE_STATUS_TTL_SECONDS:
                return live[1]
            view = self._compute(record)
            with self._lock:
                if view.final:
                    self._final[job_id] = view
                    self._live.pop(job_id, None)
                    self._job_locks.pop(job_id, None)
                else:
                    self._live[job_id] = (time.monotonic(), view)
        return view

    def result_files(self, record: JobRecord) -> dict[str, Path]:
        """Flat contract names (`<job_id>_<name>.wav`) -> the files in the partition folder."""
        if record.job_type == "separate":
            files = self.store.files(record.partition)
            return {f"{record.job_id}_{n}.wav": files.separation_stem(n) for n in record.result_names()}
        path = self.store.soundtrack_file(record.partition)
        return {f"{record.job_id}_{record.result_names()[0]}.wav": path}

    def result_file(self, filename: str) -> Path | None:
        match = FLAT_NAME_RE.match(filename)
        if match is None:
            return None
        record = self.record(match["job"])
        if record is None:
            return None
        return self.result_files(record).get(filename)

    def _compute(self, record: JobRecord) -> JobView:
        instance = self.instance
        progress = self.watcher.progress(record.job_id)
        view = JobView(job_id=record.job_id, job_type=record.job_type, status="queued")
        if progress is None:
            view.status = "failed"
            view.error = "the job's run is missing from the Dagster instance"
            return view
        view.retries = progress.retries
        run_record = instance.get_run_record_by_id(record.job_id)
        if run_record is not None:
            view.started_at = run_record.start_time
            view.ended_at = run_record.end_time
        if progress.status == "queued":
            view.status = "queued"
            view.queue_position = progress.queue_position
        elif progress.status == "running":
            view.status = "processing"
        elif progress.status == "succeeded":
            files = self.result_files(record)
            missing = [name for name, path in files.items() if not path.is_file()]
            if missing:
                view.status = "failed"
                view.error = f"the run succeeded but its result files are missing: {', '.join(missing)}"
            else:
                view.status = "completed"
                view.progress = 100.0
                view.result_urls = [f"/files/{name}" for name in files]
        else:
            view.status = "failed"
            view.error = progress.error or f"the run ended with status {progress.status}"
        if record.job_type in ("generate", "soundtrack"):
            self._soundtrack_progress(record, view, progress)
            self._drop_detail_of_generate(record, view)
        elif view.status == "processing":
            view.progress = 50.0 if progress.current_step else 10.0
        if view.final:
            view.metrics = self._run_metrics(record, view)
        return view

    def _soundtrack_progress(self, record: JobRecord, view: JobView, progress: launch.RunProgress) -> None:
        total = max(1, record.total_scenes)
        if view.status == "completed":
            view.progress_detail = {"current_scene": total, "total_scenes": total, "stage": "finalizing"}
            return
        if view.status == "queued" or not progress.steps:
            view.progress = 0.0
            view.progress_detail = {"current_scene": 0, "total_scenes": total, "stage": "generating"}
            return
        done_scenes = min(total, self.store.files(record.partition).segments_written())
        latest = progress.current_step or progress.steps[-1]
        finished = [s for s in progress.steps if s != progress.current_step]
        if latest in _FINALIZING_STEPS:
            stage, current_scene = "finalizing", total
            view.progress = _GENERATING_SHARE + _CROSSFADING_SHARE
        elif latest in _CROSSFADING_STEPS:
            stage, current_scene = "crossfading", total
            crossfaded = sum(1 for s in finished if s in _CROSSFADING_STEPS)
            view.progress = _GENERATING_SHARE + _CROSSFADING_SHARE * crossfaded / len(_CROSSFADING_STEPS)
        else:
            stage = "generating"
            current_scene = min(total, done_scenes + 1) if view.status == "processing" else done_scenes
            view.progress = _GENERATING_SHARE * done_scenes / total
        view.progress = min(99.0, view.progress)
        view.progress_detail = {"current_scene": current_scene, "total_scenes": total, "stage": stage}

    def _drop_detail_of_generate(self, record: JobRecord, view: JobView) -> None:
        if record.job_type == "generate":  # the contract gives progress_detail to soundtrack jobs only
            view.progress_detail = None

    def _run_metrics(self, record: JobRecord, view: JobView) -> dict[str, Any]:
        """Numbers of a finished run for /metrics, from the summary files the run wrote last."""
        out: dict[str, Any] = {"generation_seconds": [], "real_time_factor": [], "transition_scores": {}}
        files = self.store.files(record.partition)
        if record.job_type == "separate":
            summary = read_json_object(files.separation_summary)
            seconds, audio_seconds = summary.get("separation_seconds"), summary.get("duration_seconds")
        else:
            summary = read_json_object(files.summary)
            seconds, audio_seconds = summary.get("generation_seconds"), summary.get("duration_seconds")
            view.retries = max(view.retries, int(summary.get("regenerations") or 0))
            report = read_json_object(files.report)
            for transition in report.get("transitions") or []:
                for score in _SCORE_KEYS:
                    number = _number(transition.get(score))
                    if number is not None:
                        out["transition_scores"].setdefault(score, []).append(number)
        seconds, audio_seconds = _number(seconds), _number(audio_seconds)
        if seconds is not None:
            out["generation_seconds"].append(seconds)
            if audio_seconds:
                out["real_time_factor"].append(seconds / audio_seconds)
        return out

    def summary(self) -> list[JobView]:
        views = []
        for record in self.records():
            view = self.view(record.job_id)
            if view is not None:
                views.append(view)
        return views


_SCORE_KEYS = ("mfcc_similarity", "spectral_flux", "chroma_correlation", "energy_ratio")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None
