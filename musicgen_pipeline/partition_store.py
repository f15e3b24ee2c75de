"""The one map of a partition's folder, ``$MUSICGEN_DATA/outputs/<key>/``, and the code that reads and
writes it. No Dagster: the CLI, the REST layer, the sensors, the schedule and the assets all ask here.

Layout of ``outputs/<key>/`` (soundtrack partitions)::

    request.json                  the partition's request (written before any run; its config)
    generation/<fingerprint>/     the quality loop's attempts per scene (resumable)
    segments/scene_NN.wav         accepted generated audio (float32 WAV)
    analysis/beat_grids.json      beat grids
    aligned/scene_NN.wav          DC-free, tempo-matched segments
    stems/transition_NN/*.wav     stems of the cross-faded windows of seam NN
    pictures/*.png                waveform + spectrogram pictures
    soundtrack.<format>           the final mix
    transition_report.json        per-seam scores and the quality loop's history
    summary.json                  the catalog row; written last: its presence marks the partition rendered
    runs/<run_id>.{json,log}      pending record and log of a detached run

Separation partitions (``sep-<job id>``, REST ``/separate``)::

    separation.json               {"input_path": ..., "stems": 4|2}, written before the run
    stems/<stem>.wav              16-bit PCM stems
    separation_summary.json       written last: marks the partition done

``outputs/catalog.csv`` is the table of every rendered partition. Every write of a JSON document is
atomic (temporary file, then rename), so a reader never sees half a file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from musicgen_pipeline.errors import InputError
from musicgen_pipeline.request import SoundtrackRequest, check_partition_key, parse_request

REQUEST_FILE = "request.json"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "transition_report.json"
SEPARATION_REQUEST_FILE = "separation.json"
SEPARATION_SUMMARY_FILE = "separation_summary.json"
CATALOG_FILE = "catalog.csv"
OUTPUTS_DIR = "outputs"
RUNS_DIR = "runs"
SEPARATION_STEMS = (4, 2)


def write_json_atomic(path: Path, data: Any, *, indent: int | None = 2) -> Path:
    """Write `data` as JSON (newline-terminated) through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=indent) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in `path`; {} when it is missing, unreadable, half-written or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class PartitionFiles:
    """The paths of one partition's folder (directories are created on first use)."""

    root: Path

    @property
    def key(self) -> str:
        return self.root.name

    def ensure(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    # --- soundtrack partitions ------------------------------------------------------------------
    @property
    def request(self) -> Path:
        return self.root / REQUEST_FILE

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY_FILE

    @property
    def report(self) -> Path:
        return self.root / REPORT_FILE

    def report_path(self) -> Path:
        return self.report

    def generation_dir(self, fingerprint: str) -> Path:
        return self.ensure("generation", fingerprint)

    @property
    def segments_dir(self) -> Path:
        return self.root / "segments"

    def segment_path(self, index: int) -> Path:
        return self.ensure("segments") / f"scene_{index:02d}.wav"

    def segments_written(self) -> int:
        """How many scene segments exist so far (progress of the generation step)."""
        folder = self.segments_dir
        return len(list(folder.glob("scene_*.wav"))) if folder.is_dir() else 0

    def aligned_path(self, index: int) -> Path:
        return self.ensure("aligned") / f"scene_{index:02d}.wav"

    def stems_dir(self, transition: int) -> Path:
        return self.ensure("stems", f"transition_{transition:02d}")

    def grids_path(self) -> Path:
        return self.ensure("analysis") / "beat_grids.json"

    def pictures_dir(self) -> Path:
        return self.ensure("pictures")

    def soundtrack_path(self, fmt: str) -> Path:
        return self.root / f"soundtrack.{fmt}"

    # --- separation partitions ------------------------------------------------------------------
    @property
    def separation_request(self) -> Path:
        return self.root / SEPARATION_REQUEST_FILE

    @property
    def separation_summary(self) -> Path:
        return self.root / SEPARATION_SUMMARY_FILE

    @property
    def separation_stems_dir(self) -> Path:
        return self.root / "stems"

    def separation_stem(self, name: str) -> Path:
        return self.separation_stems_dir / f"{name}.wav"

    # --- detached runs --------------------------------------------------------------------------
    def run_log(self, run_id: str) -> Path:
        return self.ensure(RUNS_DIR) / f"{run_id}.log"

    def run_record(self, run_id: str) -> Path:
        return self.ensure(RUNS_DIR) / f"{run_id}.json"


@dataclass(frozen=True)
class PartitionStore:
    """Every partition folder under `outputs_dir` (``$MUSICGEN_DATA/outputs``)."""

    outputs_dir: Path

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> PartitionStore:
        """The store of a data folder (``$MUSICGEN_DATA``): ``<data_dir>/outputs``."""
        return cls(data_dir / OUTPUTS_DIR)

    def files(self, key: str) -> PartitionFiles:
        """The folder of partition `key` (an unsafe key is an `InputError`)."""
        return PartitionFiles(self.outputs_dir / check_partition_key(key))

    @property
    def catalog_path(self) -> Path:
        return self.outputs_dir / CATALOG_FILE

    # --- requests -------------------------------------------------------------------------------
    def save_request(self, request: SoundtrackRequest, key: str | None = None) -> str:
        """Write ``<key>/request.json`` (the partition's config); return the key.

        `key` defaults to the request's content-based key; the UI path (a partition added by hand, the
        request given in the run config) passes the key the user chose. Unchanged content is not
        rewritten.
        """
        key = key or request.partition_key()
        path = self.files(key).request
        text = json.dumps(request.to_dict(), indent=2, sort_keys=True) + "\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        return key

    def load_request(self, key: str) -> SoundtrackRequest:
        path = self.files(key).request
        if not path.exists():
            raise InputError(
                f"partition {key!r}: no request stored at {path} (register it with `musicgen-pipeline render` "
                "or the inbox, or pass the request JSON in the run config of soundtrack_request)"
            )
        return parse_request(json.loads(path.read_text(encoding="utf-8")), source=str(path))

    # --- results --------------------------------------------------------------------------------
    def is_rendered(self, key: str) -> bool:
        """True when the partition's summary exists (written last by the transition_report asset)."""
        return self.files(key).summary.exists()

    def summary(self, key: str) -> dict[str, Any]:
        """The partition's summary ({} until it is rendered)."""
        return read_json_object(self.files(key).summary)

    def report(self, key: str) -> dict[str, Any]:
        """The partition's transition report ({} until it is written)."""
        return read_json_object(self.files(key).report)

    def summaries(self) -> list[dict[str, Any]]:
        """The summary of every rendered partition, in key order (unreadable ones skipped)."""
        out = []
        for path in sorted(self.outputs_dir.glob(f"*/{SUMMARY_FILE}")):
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError):
                continue
        return out

    def soundtrack_file(self, key: str) -> Path:
        """The rendered WAV of a partition (the summary's path; ``soundtrack.wav`` before it exists)."""
        rendered = self.summary(key).get("soundtrack_path")
        if isinstance(rendered, str) and rendered.endswith(".wav"):
            return Path(rendered)
        return self.files(key).soundtrack_path("wav")

    # --- separation -----------------------------------------------------------------------------
    def write_separation_request(self, key: str, input_path: Path, stems: int) -> Path:
        """The separation partition's config, written atomically before its run is launched."""
        if stems not in SEPARATION_STEMS:
            raise InputError(f"stems={stems}: must be 4 or 2")
        return write_json_atomic(
            self.files(key).separation_request, {"input_path": str(input_path), "stems": stems}
        )

    def read_separation_request(self, key: str) -> tuple[Path, int]:
        path = self.files(key).separation_request
        if not path.exists():
            raise InputError(f"partition {key!r}: no separation request at {path}")
        data = json.loads(path.read_text(encoding="utf-8"))
        stems = int(data.get("stems", 4))
        if stems not in SEPARATION_STEMS:
            raise InputError(f"{path}: stems={stems} must be 4 or 2")
        return Path(data["input_path"]), stems

    def read_separation_summary(self, key: str) -> dict[str, Any] | None:
        path = self.files(key).separation_summary
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    # --- detached runs --------------------------------------------------------------------------
    def write_pending_run(self, key: str, run_id: str, record: dict[str, Any]) -> Path:
        return write_json_atomic(self.files(key).run_record(run_id), record, indent=None)

    def pending_run(self, run_id: str) -> dict[str, Any] | None:
        """The pending record a detached run left before its run existed (None when there is none)."""
        for path in self.outputs_dir.glob(f"*/{RUNS_DIR}/{run_id}.json"):
            return read_json_object(path) or None
        return None
