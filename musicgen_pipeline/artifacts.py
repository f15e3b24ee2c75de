"""What the soundtrack assets hand each other: frozen dataclasses, no Dagster.

Like the audio core's `BeatGrid` and `TransitionPlan`, each value names its fields and types, so a
step reads ``segment.path`` instead of ``segment["path"]``. The graph and what flows along it::

    soundtrack_request  -> SoundtrackRequest          (request.py)
    scene_segments      -> list[SceneSegment]         accepted audio per scene + the quality loop's record
    beat_grids          -> list[SegmentBeats]         the beat grid of each segment
    aligned_segments    -> AlignedTrack               DC-free, tempo-matched segments and the track tempo
    segment_stems       -> list[Seam]                 each seam's TransitionPlan and stem files
    soundtrack          -> Soundtrack                 the mixed, normalised file and its scored seams
    transition_report   -> dict                       the report as written to transition_report.json

Audio lives in files (paths here); the values are small and pickle through the IO manager.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from musicgen_pipeline.audio.rhythm import BeatGrid
from musicgen_pipeline.audio.seam_plan import TransitionPlan


def stored_grid(grid: BeatGrid) -> BeatGrid:
    """`grid` at the precision ``BeatGrid.to_dict`` stores (beats to 0.1 ms, tempo to 0.001 BPM): the
    grids handed between steps are exactly those written to ``analysis/beat_grids.json``."""
    return BeatGrid.from_dict(grid.to_dict())


@dataclass(frozen=True)
class SceneSegment:
    """The accepted generation of one scene (``segments/scene_NN.wav``)."""

    index: int
    path: str
    prompt: str
    seed: int
    attempt: int  # the kept attempt
    regenerations: int  # attempts made after the first
    exhausted: bool  # no attempt passed: the best failing one was kept
    scores: dict[str, Any] | None  # the kept attempt's seam scores (None: scene 0, or the loop is off)
    passed: bool | None
    attempts: tuple[dict[str, Any], ...]  # every attempt's record, in order
    duration: float  # seconds of generated audio (with the margin for the seams)
    scene_seconds: float  # the scene's requested share of the track
    sample_rate: int
    seconds: float  # wall time of the generate call
    real_time_factor: float
    model_id: str
    picture: str


@dataclass(frozen=True)
class SegmentBeats:
    """The beat grid of one generated segment (at stored precision: `stored_grid`)."""

    index: int
    grid: BeatGrid


@dataclass(frozen=True)
class AlignedSegment:
    """One segment cleaned of DC offset and stretched to the track tempo (``aligned/scene_NN.wav``)."""

    index: int
    path: str
    grid: BeatGrid  # the beats after stretching (at stored precision: `stored_grid`)
    source_bpm: float
    rate: float  # source duration / aligned duration
    duration: float
    dc_offset_removed: float


@dataclass(frozen=True)
class AlignedTrack:
    """Every aligned segment and the tempo they were stretched to (0: tempo matching off)."""

    target_bpm: float
    segments: tuple[AlignedSegment, ...]


@dataclass(frozen=True)
class Seam:
    """Seam `index` (between segments index and index + 1): its plan and the stems of its windows."""

    index: int
    plan: TransitionPlan
    target_time: float  # the scene boundary the overlap is centred on (seconds in the track)
    offset_frames: int  # where segment `index` starts in the joined track
    prev: dict[str, str] = field(default_factory=dict)  # stem name -> WAV of the outgoing window
    next: dict[str, str] = field(default_factory=dict)  # stem name -> WAV of the incoming window

    @property
    def separated(self) -> bool:
        return bool(self.prev)


@dataclass(frozen=True)
class Soundtrack:
    """The finished track (``soundtrack.<format>``) and its seams scored on the joined audio."""

    path: str
    format: str
    duration: float
    requested_seconds: float
    expected_seconds: float
    joined_seconds: float  # before the cut to the requested total
    sample_rate: int
    channels: int
    target_bpm: float
    loudness: dict[str, Any]
    transitions: tuple[dict[str, Any], ...]  # one scored row per seam (the report's rows)
    mix_seconds: float
    picture: str

    @property
    def failing(self) -> list[dict[str, Any]]:
        return [t for t in self.transitions if not t["passed"]]
