"""`GET /health`: the device jobs run on and whether each configured model can be loaded here.

Models are never loaded in the REST process (jobs run in their own processes), so
`models_loaded.<kind>` answers the question a client asks before submitting: is the configured model
available to this machine without a download (tiny-random, a local folder, or a warm cache)? The
answer is computed in a worker thread (torch is imported once) and reused for `HEALTH_TTL_SECONDS`.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from musicgen_pipeline.api.schemas import Health, ModelsLoaded
from musicgen_pipeline.models.ids import TINY_DEMUCS_ID, TINY_IDS
from musicgen_pipeline.settings import Settings

HEALTH_TTL_SECONDS = 30.0
_log = logging.getLogger(__name__)
_cache: dict[tuple[str, str, str], tuple[float, Health]] = {}
_lock = threading.Lock()


def musicgen_available(model_id: str) -> bool:
    if model_id in TINY_IDS:
        return True
    path = Path(model_id).expanduser()
    if path.exists() or model_id.startswith((".", "/", "~")):
        return (path / "config.json").is_file()
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(model_id, "config.json"), str)
    except Exception as exc:  # the answer is "not available here"; the reason goes to the log
        _log.warning("health: cannot tell whether MusicGen %r is cached: %s", model_id, exc)
        return False


def demucs_available(name: str) -> bool:
    if name == TINY_DEMUCS_ID:
        return True
    from musicgen_pipeline.models import demucs

    path = Path(name.split(":", 1)[0]).expanduser()
    if path.is_dir():
        return any(path.glob("*.th")) or any(path.glob("*.yaml"))
    if name.startswith((".", "/", "~")):
        return False
    try:
        return bool(demucs._remote_cached(name) or demucs._hf_cached(name))
    except Exception as exc:  # the answer is "not available here"; the reason goes to the log
        _log.warning("health: cannot tell whether Demucs %r is cached: %s", name, exc)
        return False


def _compute(settings: Settings) -> Health:
    import torch

    from musicgen_pipeline.models.device import resolve_device

    gpu = bool(torch.cuda.is_available())
    mps_backend = getattr(torch.backends, "mps", None)
    mps = bool(mps_backend is not None and mps_backend.is_available())
    try:
        device = resolve_device(settings.device).type
    except Exception as exc:  # a configured device this machine lacks: report what jobs would fall to
        _log.warning("health: MUSICGEN_DEVICE=%r cannot be used here: %s", settings.device, exc)
        device = "cuda" if gpu else "mps" if mps else "cpu"
    return Health(
        device=device,
        gpu_available=gpu,
        mps_available=mps,
        models_loaded=ModelsLoaded(
            musicgen=musicgen_available(settings.musicgen_model),
            demucs=demucs_available(settings.demucs_model),
        ),
    )


def health_report(settings: Settings) -> Health:
    key = (settings.device, settings.musicgen_model, settings.demucs_model)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < HEALTH_TTL_SECONDS:
            return cached[1]
    report = _compute(settings)
    with _lock:
        _cache[key] = (time.monotonic(), report)
    return report
