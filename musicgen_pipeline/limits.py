"""The one table of request limits, shared by request validation, the REST schemas and the CLI.

Every bound a request (a file, a REST body, a CLI flag) can break is a `Limit` here; the messages,
the REST schema bounds (`api/schemas.py`), the CLI checks (`commands/generate.py`) and the pipeline's
validation (`request.py`) all read it, so they cannot disagree. The REST contract's own narrower
bounds (crossfade 0.5-5 s) and the deployment's REST duration bounds (``API_*`` settings) are
further restrictions applied on top, never wider than this table. Pure Python.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """An inclusive range [minimum, maximum] of one field, with the unit used in messages."""

    field: str
    minimum: float
    maximum: float
    unit: str = ""

    def __contains__(self, value: object) -> bool:
        return isinstance(value, (int, float)) and self.minimum <= value <= self.maximum

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"between {self.minimum:g} and {self.maximum:g}{unit}"


SCENE_SECONDS = Limit("duration", 1.0, 600.0, "s")
TOTAL_SECONDS = Limit("total duration", 1.0, 1800.0, "s")  # 30 minutes; DESIGN asks for at least 20
SCENES = Limit("scenes", 1, 100)
PROMPT_CHARS = Limit("prompt", 1, 500, "characters")
MOOD_CHARS = Limit("mood", 0, 100, "characters")
CROSSFADE_SECONDS = Limit("crossfade_duration", 0.05, 10.0, "s")  # 0.05 s: the shortest ('hard') cut
SEED = Limit("seed", 0, 2**31 - 1)  # one bound for REST, CLI and pipeline (numpy/torch seeds)

# The REST contract's crossfade range (seed-api.md), inside CROSSFADE_SECONDS.
API_CROSSFADE_SECONDS = Limit("crossfade_duration", 0.5, 5.0, "s")

LIMITS: tuple[Limit, ...] = (
    SCENE_SECONDS,
    TOTAL_SECONDS,
    SCENES,
    PROMPT_CHARS,
    MOOD_CHARS,
    CROSSFADE_SECONDS,
    SEED,
)
