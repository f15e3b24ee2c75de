"""What the listening pages know of one partition folder, read in one place (`read_partition`).

A partition's files live under ``outputs/<key>/``: ``request.json`` (present from registration on),
``summary.json`` (written last: its presence marks the partition rendered), ``transition_report.json``,
``soundtrack.<wav|flac|ogg>``, ``segments/scene_NN.wav``, ``aligned/scene_NN.wav``,
``stems/transition_NN/{prev,next}_<stem>.wav`` and ``pictures/*.png``. `read_partition` is the only
function here that touches that layout; it returns a frozen `PartitionView` whose `audio_files` and
`pictures` are also the whitelist of what the pages serve (nothing else of the folder is reachable).
Missing or unreadable JSON reads as None: a partition still rendering shows what it has so far.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from musicgen_pipeline.partition_store import PartitionFiles
from musicgen_pipeline.request import PARTITION_KEY_RE

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
_SCENE_RE = re.compile(r"^scene_(\d+)$")
_TRANSITION_RE = re.compile(r"^transition_(\d+)$")


@dataclass(frozen=True)
class AudioFile:
    """One playable file: `relpath` is relative to the partition folder (the URL's tail)."""

    label: str
    relpath: str
    path: Path


@dataclass(frozen=True)
class SeamStems:
    """The separated windows of both sides of one seam (`prev_*` then `next_*`)."""

    index: int
    files: tuple[AudioFile, ...]


@dataclass(frozen=True)
class PartitionView:
    key: str
    folder: Path
    request: dict[str, Any] | None
    summary: dict[str, Any] | None
    report: dict[str, Any] | None
    soundtrack: AudioFile | None
    segments: tuple[AudioFile, ...]
    aligned: tuple[AudioFile, ...]
    stems: tuple[SeamStems, ...]
    pictures: dict[str, Path]  # file name (``soundtrack.png``, ``scene_00.png``) -> path
    updated: float  # newest mtime of request.json / summary.json (seconds since the epoch)

    @property
    def rendered(self) -> bool:
        return self.summary is not None

    @property
    def audio_files(self) -> dict[str, Path]:
        """relpath -> path of every file the pages may serve as audio."""
        files = [*self.segments, *self.aligned, *(f for seam in self.stems for f in seam.files)]
        if self.soundtrack is not None:
            files.append(self.soundtrack)
        return {f.relpath: f.path for f in files}

    @property
    def scene_durations(self) -> list[float]:
        scenes = (self.request or {}).get("scenes") or []
        return [float(s.get("duration", 0.0)) for s in scenes if isinstance(s, dict)]

    @property
    def duration(self) -> float | None:
        """The soundtrack's seconds once rendered, else the requested total."""
        if self.summary and isinstance(self.summary.get("duration_seconds"), int | float):
            return float(self.summary["duration_seconds"])
        total = sum(self.scene_durations)
        return total or None

    @property
    def name(self) -> str:
        return str((self.request or {}).get("name") or self.key)

    @property
    def prompt(self) -> str:
        """The base prompt and the scenes' moods (or their own prompts), as a person reads them."""
        request = self.request or {}
        scenes = [s for s in request.get("scenes") or [] if isinstance(s, dict)]
        parts = [str(s.get("mood") or s.get("prompt") or "") for s in scenes]
        base = str(request.get("base_prompt") or "")
        moods = " → ".join(p for p in parts if p)
        return f"{base} ({moods})" if base and moods else base or moods

    @property
    def status(self) -> str:
        if self.summary is None:
            stage = "soundtrack mixed" if self.soundtrack else "stems" if self.stems else None
            stage = stage or ("aligned" if self.aligned else "segments" if self.segments else "registered")
            return f"not rendered yet (rendering or failed; last files: {stage})"
        total = self.summary.get("transitions", 0)
        passed = self.summary.get("transitions_passed", total)
        return f"rendered, {passed}/{total} seams pass" if total else "rendered"


def _json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _audio_in(folder: Path, sub: str, label: str) -> tuple[AudioFile, ...]:
    found = []
    for path in sorted((folder / sub).glob("scene_*.wav")):
        match = _SCENE_RE.match(path.stem)
        if match:
            found.append(AudioFile(f"{label} {int(match.group(1)) + 1}", f"{sub}/{path.name}", path))
    return tuple(found)


def _stems(folder: Path) -> tuple[SeamStems, ...]:
    seams = []
    for seam_dir in sorted((folder / "stems").glob("transition_*")):
        match = _TRANSITION_RE.match(seam_dir.name)
        if not match or not seam_dir.is_dir():
            continue
        files = sorted(seam_dir.glob("*.wav"), key=lambda p: (not p.stem.startswith("prev"), p.stem))
        seams.append(
            SeamStems(
                int(match.group(1)),
                tuple(
                    AudioFile(p.stem.replace("_", " "), f"stems/{seam_dir.name}/{p.name}", p) for p in files
                ),
            )
        )
    return tuple(seams)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def read_partition(outputs_dir: Path, key: str) -> PartitionView | None:
    """The partition `key` as the pages show it; None when the key is malformed or has no request."""
    if not PARTITION_KEY_RE.match(key):
        return None
    files = PartitionFiles(outputs_dir / key)
    folder = files.root
    request = _json(files.request)
    if request is None:
        return None
    summary = _json(files.summary)
    soundtrack = None
    named = Path(str((summary or {}).get("soundtrack_path") or "")).name
    candidates = [folder / named] if named else []
    candidates += [folder / f"soundtrack{suffix}" for suffix in AUDIO_SUFFIXES]
    for path in candidates:
        if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file():
            soundtrack = AudioFile("soundtrack", path.name, path)
            break
    pictures = {p.name: p for p in sorted((folder / "pictures").glob("*.png")) if p.is_file()}
    return PartitionView(
        key=key,
        folder=folder,
        request=request,
        summary=summary,
        report=_json(files.report),
        soundtrack=soundtrack,
        segments=_audio_in(folder, "segments", "scene"),
        aligned=_audio_in(folder, "aligned", "scene"),
        stems=_stems(folder),
        pictures=pictures,
        updated=max(_mtime(files.request), _mtime(files.summary)),
    )


def list_partitions(outputs_dir: Path) -> list[PartitionView]:
    """Every soundtrack partition of `outputs_dir`, newest first."""
    views = []
    if outputs_dir.is_dir():
        for folder in outputs_dir.iterdir():
            if folder.is_dir():
                view = read_partition(outputs_dir, folder.name)
                if view is not None:
                    views.append(view)
    return sorted(views, key=lambda v: (v.updated, v.key), reverse=True)
