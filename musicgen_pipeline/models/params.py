"""Sampling and long-form settings of a MusicGen call, as a frozen value (no torch, no environment).

The caller builds it (entry points resolve the settings: `musicgen_pipeline.model_options`); the model
layer only checks that the values make sense.
"""

from __future__ import annotations

from dataclasses import dataclass

from musicgen_pipeline.errors import InputError

WINDOW_SECONDS = 30.0  # what the released models were trained on (1500 frames at 50 Hz)
MAX_DURATION_SECONDS = 3600.0  # one row of one call; a soundtrack is many scenes


@dataclass(frozen=True)
class GenerationParams:
    """Sampling and long-form settings.

    - `top_k`: sample among the k most likely codes (0 = whole codebook). Default 250 (audiocraft).
    - `top_p`: nucleus sampling threshold (0 = off); applied after top-k when both are set.
    - `temperature`: divides the guided logits.
    - `guidance_scale`: classifier-free guidance (<= 1 = off, no unconditional pass).
    - `context_seconds`: code frames kept as context when a long scene moves to the next window and
      when a new scene continues the previous one.
    - `window_seconds`: frames per window including the context (30 s, the trained length).
    - `trim_seconds`: noisy end of a window that is dropped when the window is continued.
    """

    top_k: int = 250
    top_p: float = 0.0
    temperature: float = 1.0
    guidance_scale: float = 3.0
    context_seconds: float = 10.0
    window_seconds: float = WINDOW_SECONDS
    trim_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.top_k < 0:
            raise InputError(f"top_k={self.top_k} must be >= 0")
        if not 0.0 <= self.top_p <= 1.0:
            raise InputError(f"top_p={self.top_p} must be within [0, 1]")
        if self.temperature <= 0:
            raise InputError(f"temperature={self.temperature} must be > 0")
        if self.guidance_scale < 0:
            raise InputError(f"guidance_scale={self.guidance_scale} must be >= 0")
        if not 1.0 <= self.window_seconds <= WINDOW_SECONDS:
            raise InputError(f"window_seconds={self.window_seconds} must be within [1, {WINDOW_SECONDS}]")
        if not 0 < self.context_seconds <= self.window_seconds - 2.0:
            raise InputError(
                f"context_seconds={self.context_seconds} must be > 0 and leave at least 2 s of the "
                f"{self.window_seconds} s window for new music"
            )
        if not 0 <= self.trim_seconds <= 2.0:
            raise InputError(f"trim_seconds={self.trim_seconds} must be within [0, 2]")

    @property
    def guided(self) -> bool:
        """Whether classifier-free guidance runs (an unconditional pass beside every conditional row)."""
        return self.guidance_scale > 1.0
