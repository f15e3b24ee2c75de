"""Request and response shapes of the REST contract (`seed-api.md`).

Request models are built per app from the limits in the settings (`request_models(limits)`), so a
violated limit is FastAPI's standard 422 entry (`{type, loc, msg, input, ctx}`) naming the field and
the bound. Pydantic's lax mode accepts numeric strings (`"30"`), and unknown fields are ignored, as
the old service did. Text limits (prompt 500, mood 100), the seed range and the crossfade range
(0.5-5.0 s, the contract's own) come from the one table of limits (`musicgen_pipeline.limits`), so the
REST layer and the pipeline accept the same values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from musicgen_pipeline import limits
from musicgen_pipeline.audio.validation import AudioLimits
from musicgen_pipeline.settings import Settings

PROMPT_MAX_CHARS = int(limits.PROMPT_CHARS.maximum)
MOOD_MAX_CHARS = int(limits.MOOD_CHARS.maximum)
CROSSFADE_MIN_SECONDS = limits.API_CROSSFADE_SECONDS.minimum
CROSSFADE_MAX_SECONDS = limits.API_CROSSFADE_SECONDS.maximum
DEFAULT_GENERATE_SECONDS = 30
DEFAULT_CROSSFADE_SECONDS = 2.0
STEM_MODES = (4, 2)

Prompt = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=PROMPT_MAX_CHARS)]
Mood = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MOOD_MAX_CHARS)]
Seed = Annotated[int, Field(ge=int(limits.SEED.minimum), le=int(limits.SEED.maximum))]


@dataclass(frozen=True)
class ApiLimits:
    """Numeric bounds of the job-creating endpoints: the ``API_*`` settings, clamped into the pipeline's
    table (`musicgen_pipeline.limits`) so the REST layer never accepts what the pipeline refuses."""

    generate_min_seconds: int
    generate_max_seconds: int
    scene_min_seconds: int
    scene_max_seconds: int
    max_scenes: int
    total_min_seconds: int
    total_max_seconds: int
    max_upload_bytes: int
    audio: AudioLimits  # uploaded and fetched audio: rate, channels, duration (API_MAX_AUDIO_SECONDS)

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiLimits:
        scene = limits.SCENE_SECONDS

        def seconds(value: int, bound: limits.Limit) -> int:
            return int(min(max(value, bound.minimum), bound.maximum))

        return cls(
            generate_min_seconds=seconds(settings.api_generate_min_seconds, scene),
            generate_max_seconds=seconds(settings.api_generate_max_seconds, scene),
            scene_min_seconds=seconds(settings.api_scene_min_seconds, scene),
            scene_max_seconds=seconds(settings.api_scene_max_seconds, scene),
            max_scenes=seconds(settings.api_max_scenes, limits.SCENES),
            total_min_seconds=seconds(settings.api_total_min_seconds, limits.TOTAL_SECONDS),
            total_max_seconds=seconds(settings.api_total_max_seconds, limits.TOTAL_SECONDS),
            max_upload_bytes=round(settings.max_upload_mb * 1024 * 1024),
            audio=AudioLimits(max_seconds=settings.api_max_audio_seconds),
        )


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and value.strip() == "":
        return None
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class GenerateBody(_Body):
    """`POST /generate`: one prompt, one duration (a one-scene soundtrack)."""

    prompt: Prompt
    duration: int = DEFAULT_GENERATE_SECONDS
    mood: Mood | None = None
    seed: Seed | None = None

    _none_if_blank = field_validator("mood", mode="before")(_blank_to_none)

    def effective_prompt(self) -> str:
        """The contract's `"{mood} {prompt}"` when a mood is given."""
        return f"{self.mood} {self.prompt}" if self.mood else self.prompt


class SceneBody(_Body):
    mood: Mood | None = None
    duration: int
    prompt: Prompt | None = None

    _none_if_blank = field_validator("mood", "prompt", mode="before")(_blank_to_none)


class SoundtrackBody(_Body):
    """`POST /generate/soundtrack`: scenes crossfaded into one track."""

    base_prompt: Prompt
    scenes: list[SceneBody]
    melody_audio_url: str | None = None
    use_beat_aligned_crossfade: bool = True
    crossfade_duration: Annotated[float, Field(ge=CROSSFADE_MIN_SECONDS, le=CROSSFADE_MAX_SECONDS)] = (
        DEFAULT_CROSSFADE_SECONDS
    )
    seed: Seed | None = None

    _none_if_blank = field_validator("melody_audio_url", mode="before")(_blank_to_none)

    @field_validator("melody_audio_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            check_url_scheme(value)
        return value

    @property
    def total_seconds(self) -> int:
        return sum(scene.duration for scene in self.scenes)


class SeparateJsonBody(_Body):
    """`POST /separate` with a JSON body (ours): fetch `audio_url`, split into `stems` (4 or 2)."""

    audio_url: str
    stems: int = 4

    @field_validator("audio_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        check_url_scheme(value)
        return value

    @field_validator("stems")
    @classmethod
    def _stem_mode(cls, value: int) -> int:
        return check_stem_mode(value)


def check_stem_mode(value: int) -> int:
    if value not in STEM_MODES:
        raise ValueError(
            f"stems must be 4 (drums, bass, other, vocals) or 2 (vocals, accompaniment), got {value}"
        )
    return value


def check_url_scheme(value: str) -> None:
    scheme = value.split(":", 1)[0].lower() if ":" in value else ""
    if scheme not in {"http", "https"}:
        raise ValueError(f"only http and https URLs are accepted, got {value[:200]!r}")


def request_models(limits: ApiLimits) -> tuple[type[GenerateBody], type[SoundtrackBody]]:
    """Subclasses of the bodies that enforce `limits` (validation errors are standard 422 entries)."""

    class GenerateRequest(GenerateBody):
        duration: Annotated[int, Field(ge=limits.generate_min_seconds, le=limits.generate_max_seconds)] = min(
            max(DEFAULT_GENERATE_SECONDS, limits.generate_min_seconds), limits.generate_max_seconds
        )

    class SceneRequest(SceneBody):
        duration: Annotated[int, Field(ge=limits.scene_min_seconds, le=limits.scene_max_seconds)]

    class SoundtrackRequest(SoundtrackBody):
        scenes: Annotated[list[SceneRequest], Field(min_length=1, max_length=limits.max_scenes)]  # type: ignore[assignment]

        @field_validator("scenes")
        @classmethod
        def _total(cls, scenes: list[SceneRequest]) -> list[SceneRequest]:
            total = sum(scene.duration for scene in scenes)
            if total < limits.total_min_seconds:
                raise ValueError(
                    f"total duration of the scenes is {total} s, below the minimum {limits.total_min_seconds} s"
                )
            if total > limits.total_max_seconds:
                raise ValueError(
                    f"total duration of the scenes is {total} s, above the maximum {limits.total_max_seconds} s"
                )
            return scenes

    return GenerateRequest, SoundtrackRequest


# --- responses -----------------------------------------------------------------------------------

JobState = Literal["queued", "processing", "completed", "failed"]
Stage = Literal["generating", "crossfading", "finalizing"]


class JobCreated(BaseModel):
    job_id: str
    status: JobState = "queued"


class ProgressDetail(BaseModel):
    current_scene: int
    total_scenes: int
    stage: Stage


class JobStatus(BaseModel):
    job_id: str
    status: JobState
    progress: float = Field(ge=0, le=100)
    progress_detail: ProgressDetail | None = None
    result_urls: list[str] | None = None
    error: str | None = None
    queue_position: int | None = Field(
        default=None, ge=1, description="While queued: the job's place in the run queue (1 = next)."
    )


class ModelsLoaded(BaseModel):
    musicgen: bool
    demucs: bool


class Health(BaseModel):
    status: Literal["healthy"] = "healthy"
    device: str
    gpu_available: bool
    mps_available: bool
    models_loaded: ModelsLoaded


class MetricsSummary(BaseModel):
    jobs_total: int
    jobs_completed: int
    jobs_failed: int
    jobs_in_progress: int
    avg_generation_time_seconds: float | None
    avg_soundtrack_time_seconds: float | None
    avg_separation_time_seconds: float | None


class ErrorDetail(BaseModel):
    detail: str
