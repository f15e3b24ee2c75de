"""The model layer's parameters, resolved from `Settings` (entry points and resources only).

`models/` never reads the environment or the settings: whoever starts work (a CLI command, the REST
app, a Dagster resource) calls `get_settings()` once and turns it into these values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from musicgen_pipeline.settings import Settings

if TYPE_CHECKING:
    from musicgen_pipeline.models.params import GenerationParams


def generation_params(settings: Settings, **overrides: Any) -> GenerationParams:
    """Sampling settings (MUSICGEN_TOP_K, _TOP_P, _TEMPERATURE, _GUIDANCE_SCALE, _CONTEXT_SECONDS)."""
    from musicgen_pipeline.models.params import WINDOW_SECONDS, GenerationParams

    values: dict[str, Any] = {
        "top_k": settings.top_k,
        "top_p": settings.top_p,
        "temperature": settings.temperature,
        "guidance_scale": settings.guidance_scale,
        "context_seconds": min(settings.context_seconds, WINDOW_SECONDS - 2.0),
    }
    return GenerationParams(**(values | overrides))


def musicgen_options(settings: Settings, model_id: str | None = None) -> dict[str, Any]:
    """Arguments of `models.loaders.get_musicgen`: model (a request's own or MUSICGEN_MODEL), device,
    dtype, whether to compile the step on CUDA (MUSICGEN_COMPILE)."""
    return {
        "model_id": model_id or settings.musicgen_model,
        "device": settings.device,
        "dtype": settings.dtype,
        "compile_step": None if settings.musicgen_compile else False,
    }


def separator_options(settings: Settings, model: str | None = None) -> dict[str, Any]:
    """Arguments of `models.demucs.get_separator`: model (DEMUCS_MODEL), device, chunking, shifts."""
    return {
        "model": model or settings.demucs_model,
        "device": settings.device,
        "segment": settings.demucs_segment or None,
        "overlap": settings.demucs_overlap,
        "shifts": settings.demucs_shifts,
    }
