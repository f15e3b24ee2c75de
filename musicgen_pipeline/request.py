"""The soundtrack request: parsing, validation, limits, scene prompts and the partition key.

A request is JSON (DESIGN.md section 2). Two shapes are accepted:

- multi-scene: ``{"base_prompt": ..., "scenes": [{"mood": ..., "duration": ..., "prompt"?: ...}], ...}``
- one prompt: ``{"prompt": ..., "duration": 60, "mood"?: ...}`` (a one-scene soundtrack)

Validation collects *every* problem (field, value, limit) before raising `RequestError`, so the drop
folder sensor can write them all beside a rejected file. Pure Python: no dagster, no torch.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from musicgen_pipeline import limits, safe_json
from musicgen_pipeline.audio.validation import probe_audio_file
from musicgen_pipeline.errors import InputError
from musicgen_pipeline.models.capabilities import supports_melody
from musicgen_pipeline.safe_json import JsonInputError

# --- limits: names for the bounds of the one table in `limits.py` ----------------------------------
MIN_SCENE_SECONDS = limits.SCENE_SECONDS.minimum
MAX_SCENE_SECONDS = limits.SCENE_SECONDS.maximum
MAX_TOTAL_SECONDS = limits.TOTAL_SECONDS.maximum
MAX_SCENES = int(limits.SCENES.maximum)
MAX_PROMPT_CHARS = int(limits.PROMPT_CHARS.maximum)
MAX_MOOD_CHARS = int(limits.MOOD_CHARS.maximum)
MIN_CROSSFADE_SECONDS = limits.CROSSFADE_SECONDS.minimum
MAX_CROSSFADE_SECONDS = limits.CROSSFADE_SECONDS.maximum
MIN_SEED = int(limits.SEED.minimum)
MAX_SEED = int(limits.SEED.maximum)
OUTPUT_FORMATS = ("wav", "flac", "ogg")
SCENE_CONDITIONING = ("continuation", "independent")
DEFAULT_CROSSFADE_SECONDS = 2.0
# The rendered soundtrack lasts exactly the sum of the scene durations (scenes are generated with audio
# to spare for the crossfades, beat snapping and tempo stretch; the mix trims the end with a short
# fade-out), to the frame in memory; 50 ms bounds what any output encoding may add or drop.
DURATION_TOLERANCE_SECONDS = 0.05

_KNOWN_KEYS = {
    "name",
    "base_prompt",
    "scenes",
    "prompt",
    "duration",
    "mood",
    "crossfade_duration",
    "beat_aligned",
    "tempo_match",
    "stem_aware",
    "seed",
    "model",
    "output_format",
    "scene_conditioning",
    "melody",
}


@dataclass(frozen=True)
class Problem:
    """One validation problem: which field, what value, what is wrong (the limit)."""

    field: str
    value: Any
    message: str

    def __str__(self) -> str:
        if self.value is None and self.field.startswith("<"):  # the whole file/document: no value to show
            return f"{self.field}: {self.message}"
        return f"{self.field}={_short(self.value)}: {self.message}"


class RequestError(InputError):
    """A request that failed validation; `problems` lists every problem found."""

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        head = "; ".join(str(p) for p in self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"{prefix}invalid request: {head}{more}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "error": str(self),
            "problems": [
                {"field": p.field, "value": _jsonable(p.value), "problem": p.message} for p in self.problems
            ],
        }


@dataclass(frozen=True)
class Scene:
    mood: str
    duration: float
    prompt: str | None = None


@dataclass(frozen=True)
class SoundtrackRequest:
    """A validated request. Build with `parse_request`; `to_dict()` round-trips through it."""

    base_prompt: str
    scenes: tuple[Scene, ...]
    crossfade_duration: float = DEFAULT_CROSSFADE_SECONDS
    beat_aligned: bool = True
    tempo_match: bool = True
    stem_aware: bool = True
    seed: int = 0
    model: str | None = None  # None: MUSICGEN_MODEL
    output_format: str = "wav"
    scene_conditioning: str = "continuation"
    name: str | None = None
    melody: str | None = None  # reference audio file whose melody every scene follows (melody models)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def total_duration(self) -> float:
        return float(sum(s.duration for s in self.scenes))

    @property
    def expected_duration(self) -> float:
        """The soundtrack lasts the sum of its scenes: each seam's overlap is centred on the boundary
        between two scenes (scene k starts mixing in at T_k - crossfade/2), not taken out of the total."""
        return self.total_duration

    @property
    def duration_tolerance(self) -> float:
        return DURATION_TOLERANCE_SECONDS

    def scene_prompts(self) -> list[str]:
        """``"{mood}, {base_prompt}"``, or ``"{mood}, {prompt}"`` for a scene with its own prompt."""
        out = []
        for scene in self.scenes:
            body = scene.prompt or self.base_prompt
            out.append(f"{scene.mood}, {body}" if scene.mood else body)
        return out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        data["scenes"] = [{k: v for k, v in asdict(s).items() if v is not None} for s in self.scenes]
        if data["name"] is None:
            data.pop("name")
        if data["model"] is None:
            data.pop("model")
        if data["melody"] is None:
            data.pop("melody")
        return data

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def content_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def partition_key(self) -> str:
        """A short, safe, unique id: ``<slug>-<10 hex of the content hash>``.

        Same request content => same key (idempotent sensors, schedules and re-submissions).
        """
        slug = slugify(self.name or self.base_prompt, max_len=32)
        return f"{slug}-{self.content_hash()[:10]}" if slug else self.content_hash()[:16]


def slugify(text: str, max_len: int = 32) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_len].rstrip("-")


PARTITION_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def check_partition_key(key: str) -> str:
    """Refuse keys that are unsafe as a folder name (they name `outputs/<key>/`)."""
    if not PARTITION_KEY_RE.match(key):
        raise InputError(
            f"partition key {key!r} must match {PARTITION_KEY_RE.pattern} (lowercase, digits, '-')"
        )
    return key


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(
    raw: dict[str, Any], key: str, path: str, default: float, lo: float, hi: float, problems: list[Problem]
) -> float:
    value = raw.get(key, default)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            problems.append(Problem(path, value, "must be a number"))
            return default
    if not _is_number(value) or value != value:  # NaN
        problems.append(Problem(path, value, "must be a number"))
        return default
    if value < lo or value > hi:
        problems.append(Problem(path, value, f"must be between {lo:g} and {hi:g}"))
    return float(value)


def _bool(raw: dict[str, Any], key: str, default: bool, problems: list[Problem]) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        problems.append(Problem(key, value, "must be true or false"))
        return default
    return value


def _text(value: Any, path: str, max_chars: int, problems: list[Problem], *, required: bool) -> str | None:
    if value is None:
        if required:
            problems.append(Problem(path, None, "is required"))
        return None
    if not isinstance(value, str):
        problems.append(Problem(path, value, "must be a string"))
        return None
    value = value.strip()
    if required and not value:
        problems.append(Problem(path, value, "must not be empty"))
    if len(value) > max_chars:
        problems.append(Problem(path, f"<{len(value)} chars>", f"must be at most {max_chars} characters"))
    return value


def _scene(item: Any, path: str, problems: list[Problem]) -> Scene | None:
    if not isinstance(item, dict):
        problems.append(Problem(path, item, "must be an object with mood and duration"))
        return None
    mood = _text(item.get("mood"), f"{path}.mood", MAX_MOOD_CHARS, problems, required=False) or ""
    prompt = _text(item.get("prompt"), f"{path}.prompt", MAX_PROMPT_CHARS, problems, required=False)
    if "duration" not in item:
        problems.append(Problem(f"{path}.duration", None, "is required"))
        duration = MIN_SCENE_SECONDS
    else:
        duration = _number(
            item,
            "duration",
            f"{path}.duration",
            MIN_SCENE_SECONDS,
            MIN_SCENE_SECONDS,
            MAX_SCENE_SECONDS,
            problems,
        )
    return Scene(mood=mood, duration=duration, prompt=prompt or None)


def _prompt_and_scenes(raw: dict[str, Any], problems: list[Problem]) -> tuple[str | None, list[Scene]]:
    """The base prompt and the scenes, from either shape (one prompt, or base_prompt + scenes)."""
    if "scenes" not in raw and "prompt" in raw:
        prompt = _text(raw.get("prompt"), "prompt", MAX_PROMPT_CHARS, problems, required=True)
        mood = _text(raw.get("mood"), "mood", MAX_MOOD_CHARS, problems, required=False) or ""
        duration = _number(raw, "duration", "duration", 30.0, MIN_SCENE_SECONDS, MAX_SCENE_SECONDS, problems)
        return prompt, [Scene(mood=mood, duration=duration)]
    base_prompt = _text(raw.get("base_prompt"), "base_prompt", MAX_PROMPT_CHARS, problems, required=True)
    raw_scenes = raw.get("scenes")
    if raw_scenes is None:
        problems.append(Problem("scenes", None, "is required (or give a single 'prompt' and 'duration')"))
    elif not isinstance(raw_scenes, list):
        problems.append(Problem("scenes", raw_scenes, "must be a list of scenes"))
    elif not raw_scenes:
        problems.append(Problem("scenes", raw_scenes, f"must hold between 1 and {MAX_SCENES} scenes"))
    elif len(raw_scenes) > MAX_SCENES:
        problems.append(
            Problem("scenes", f"<{len(raw_scenes)} scenes>", f"must hold at most {MAX_SCENES} scenes")
        )
    else:
        scenes = [_scene(item, f"scenes[{i}]", problems) for i, item in enumerate(raw_scenes)]
        return base_prompt, [scene for scene in scenes if scene is not None]
    return base_prompt, []


def _crossfade(raw: dict[str, Any], scenes: list[Scene], problems: list[Problem]) -> float:
    """The crossfade (at most half the shortest scene) and the total duration's limit."""
    crossfade = _number(
        raw,
        "crossfade_duration",
        "crossfade_duration",
        DEFAULT_CROSSFADE_SECONDS,
        MIN_CROSSFADE_SECONDS,
        MAX_CROSSFADE_SECONDS,
        problems,
    )
    if len(scenes) > 1:
        shortest = min(s.duration for s in scenes)
        if crossfade > shortest / 2:
            problems.append(
                Problem(
                    "crossfade_duration",
                    crossfade,
                    f"must be at most half the shortest scene ({shortest / 2:g} s)",
                )
            )
    total = sum(s.duration for s in scenes)
    if total > MAX_TOTAL_SECONDS:
        problems.append(
            Problem(
                "scenes", f"<total {total:g} s>", f"total duration must be at most {MAX_TOTAL_SECONDS:g} s"
            )
        )
    return crossfade


def _seed(raw: dict[str, Any], problems: list[Problem]) -> int:
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        problems.append(Problem("seed", seed, "must be an integer"))
    elif seed not in limits.SEED:
        problems.append(Problem("seed", seed, f"must be between {MIN_SEED} and {MAX_SEED}"))
    else:
        return seed
    return 0


def _model(raw: dict[str, Any], problems: list[Problem]) -> str | None:
    model = raw.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        problems.append(
            Problem("model", model, "must be a non-empty string (hub id, local folder or tiny-random)")
        )
        return None
    return model.strip() if isinstance(model, str) else None


def _choice(raw: dict[str, Any], key: str, options: tuple[str, ...], problems: list[Problem]) -> str:
    """One of `options` (the first is the default); ``output_format`` is case-insensitive."""
    value = raw.get(key, options[0])
    if key == "output_format" and isinstance(value, str):
        value = value.lower()
    if not isinstance(value, str) or value not in options:
        problems.append(Problem(key, raw.get(key), f"must be one of {', '.join(options)}"))
        return options[0]
    return value


def _name(raw: dict[str, Any], name: str | None, problems: list[Problem]) -> str | None:
    req_name = raw.get("name", name)
    if req_name is not None and (not isinstance(req_name, str) or not slugify(req_name)):
        problems.append(Problem("name", req_name, "must be a string with at least one letter or digit"))
        return None
    return req_name


def _melody(
    raw: dict[str, Any], model: str | None, default_model: str | None, problems: list[Problem]
) -> str | None:
    """The melody file's resolved path: a readable audio file, and a model that can use it."""
    melody = raw.get("melody")
    if melody is None:
        return None
    if not isinstance(melody, str) or not melody.strip():
        problems.append(Problem("melody", melody, "must be the path of an audio file"))
        return None
    if not Path(melody).expanduser().is_file():
        problems.append(Problem("melody", melody, "file not found"))
        return None
    melody = str(Path(melody).expanduser().resolve())
    try:  # the one audio-input rule: decodable, 8-384 kHz, mono/stereo (header only, cheap)
        probe_audio_file(melody, "melody file")
    except InputError as exc:
        problems.append(Problem("melody", melody, str(exc).removeprefix("melody file: ")))
        return None
    # Refused here (REST, inbox, render alike) rather than minutes later inside the run.
    model_id = model or default_model
    if model_id is not None and not supports_melody(model_id):
        problems.append(
            Problem(
                "melody",
                melody,
                f"needs a melody model; {model_id!r} has no melody conditioning "
                "(facebook/musicgen-melody, or tiny-random-melody offline)",
            )
        )
    return melody


def parse_request(
    raw: Any, *, source: str | None = None, name: str | None = None, default_model: str | None = None
) -> SoundtrackRequest:
    """Validate a decoded JSON object into a `SoundtrackRequest`; raise `RequestError` with every problem.

    One small validator per field group, in the order the problems are reported. `default_model` is the
    model a request without ``model`` will use (MUSICGEN_MODEL, passed by the entry point): a
    ``melody`` request is checked against it; None skips that check.
    """
    if not isinstance(raw, dict):
        raise RequestError([Problem("<request>", type(raw).__name__, "must be a JSON object")], source)
    problems: list[Problem] = []
    base_prompt, scenes = _prompt_and_scenes(raw, problems)
    crossfade = _crossfade(raw, scenes, problems)
    seed = _seed(raw, problems)
    model = _model(raw, problems)
    fmt = _choice(raw, "output_format", OUTPUT_FORMATS, problems)
    conditioning = _choice(raw, "scene_conditioning", SCENE_CONDITIONING, problems)
    req_name = _name(raw, name, problems)
    melody = _melody(raw, model, default_model, problems)
    beat_aligned = _bool(raw, "beat_aligned", True, problems)
    tempo_match = _bool(raw, "tempo_match", True, problems)
    stem_aware = _bool(raw, "stem_aware", True, problems)
    if problems:
        raise RequestError(problems, source)
    return SoundtrackRequest(
        base_prompt=base_prompt or "",
        scenes=tuple(scenes),
        crossfade_duration=crossfade,
        beat_aligned=beat_aligned,
        tempo_match=tempo_match,
        stem_aware=stem_aware,
        seed=seed,
        model=model,
        output_format=fmt,
        scene_conditioning=conditioning,
        name=req_name,
        melody=melody,
        extra={k: v for k, v in raw.items() if k not in _KNOWN_KEYS},
    )


def _refused(exc: JsonInputError, source: str | None) -> RequestError:
    field = "<json>" if exc.kind in ("syntax", "json") else "<file>"
    return RequestError([Problem(field, None, exc.reason)], source)


def load_json_text(text: str | bytes, *, source: str | None = None) -> Any:
    """The JSON document in `text`, read by the one safe reader (`safe_json`: size, UTF-8, nesting,
    NaN/Infinity, huge numbers, long strings, lone surrogates); any problem is a `RequestError`."""
    try:
        return safe_json.loads(text, source=source)
    except JsonInputError as exc:
        raise _refused(exc, source) from None


def load_json_file(path: Path, *, source: str | None = None) -> Any:
    """`load_json_text` of a file, refused by size before it is read whole."""
    try:
        return safe_json.read_json_file(path, source=source)
    except JsonInputError as exc:
        raise _refused(exc, exc.source) from None


def parse_request_text(
    text: str | bytes, *, source: str | None = None, default_model: str | None = None
) -> SoundtrackRequest:
    return parse_request(load_json_text(text, source=source), source=source, default_model=default_model)


def load_request(path: str | Path, *, default_model: str | None = None) -> SoundtrackRequest:
    """Read one request file. Its identity is its content: the file's name never enters the request
    (the same request saved under two names is one partition, one run)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: request file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a request file")
    try:
        raw = load_json_file(path, source=str(path))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the request file ({exc.strerror or exc})") from None
    return parse_request(raw, source=str(path), default_model=default_model)


def requests_in_document(
    raw: Any, *, source: str | None = None, name: str | None = None, default_model: str | None = None
) -> list[SoundtrackRequest]:
    """A drop-folder file holds one request, or ``{"requests": [...]}``; every problem of every entry is reported."""
    if isinstance(raw, dict) and "requests" in raw:
        items = raw["requests"]
        if not isinstance(items, list) or not items:
            raise RequestError([Problem("requests", items, "must be a non-empty list of requests")], source)
        out: list[SoundtrackRequest] = []
        problems: list[Problem] = []
        for i, item in enumerate(items):
            try:
                out.append(
                    parse_request(
                        item, source=source, name=f"{name}-{i}" if name else None, default_model=default_model
                    )
                )
            except RequestError as exc:
                problems.extend(Problem(f"requests[{i}].{p.field}", p.value, p.message) for p in exc.problems)
        if problems:
            raise RequestError(problems, source)
        return out
    return [parse_request(raw, source=source, name=name, default_model=default_model)]
