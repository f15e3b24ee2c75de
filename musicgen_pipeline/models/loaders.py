"""Loading MusicGen checkpoints: hub ids, local `save_pretrained` folders, the offline tiny models.

- `load_musicgen(model_id, device, dtype)` — a fresh `MusicGen` (no cache).
- `get_musicgen(model_id, device, dtype)` — the process-wide one per (model, device, dtype).
- `release_musicgen(keep=)` — drop the process-wide ones of other model ids (a long-lived worker that
  renders requests for different models holds one model's weights, not the union).

Everything is a parameter: the caller resolves MUSICGEN_MODEL / MUSICGEN_DEVICE / MUSICGEN_DTYPE /
MUSICGEN_COMPILE (`musicgen_pipeline.model_options`). `device="auto"` means CUDA > MPS > CPU and
`dtype="auto"` fp16 on a GPU, fp32 on CPU. Hugging Face's own variables (HF_HUB_OFFLINE,
HF_ENDPOINT) are read by `huggingface_hub`, whose constants are used here. An id that cannot be
loaded is a `ModelUnavailableError` that says what to do, raised before any slow network retry.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import torch

from musicgen_pipeline.errors import ModelUnavailableError
from musicgen_pipeline.models.device import resolve_device, resolve_dtype
from musicgen_pipeline.models.ids import TINY_IDS
from musicgen_pipeline.models.musicgen import MusicGen
from musicgen_pipeline.models.tiny import tiny_musicgen

_MODELS: dict[tuple[str, str, str, bool | None], MusicGen] = {}
_MODELS_LOCK = threading.Lock()


def _unavailable(model_id: str, reason: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"MusicGen model {model_id!r} is not available ({reason}). Point MUSICGEN_MODEL (or --model) at a "
        "local folder saved with save_pretrained (config.json, weights, tokenizer files), or use "
        "MUSICGEN_MODEL=tiny-random for an offline model with random weights"
    )


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face endpoint accepts a TCP connection (False at once when offline)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def _load_pretrained(model_id: str) -> tuple[torch.nn.Module, object]:
    from transformers import (
        AutoConfig,
        AutoTokenizer,
        MusicgenForConditionalGeneration,
        MusicgenMelodyForConditionalGeneration,
    )

    path = Path(model_id).expanduser()
    local = path.exists() or model_id.startswith((".", "/", "~"))
    if local:
        if not (path / "config.json").is_file():
            raise _unavailable(model_id, f"{path} is not a folder with a config.json")
        source = str(path)
    else:
        from huggingface_hub import try_to_load_from_cache

        cached = isinstance(try_to_load_from_cache(model_id, "config.json"), str)
        if not cached and not hub_reachable():
            raise _unavailable(model_id, "not in the local Hugging Face cache and the hub is unreachable")
        source = model_id
    try:
        config = AutoConfig.from_pretrained(source)
        cls = (
            MusicgenMelodyForConditionalGeneration
            if config.model_type == "musicgen_melody"
            else MusicgenForConditionalGeneration
        )
        if config.model_type not in {"musicgen", "musicgen_melody"}:
            raise _unavailable(model_id, f"it is a {config.model_type!r} model, not MusicGen")
        model = cls.from_pretrained(source, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(source)
    except ModelUnavailableError:
        raise
    except (OSError, ValueError) as exc:
        raise _unavailable(model_id, str(exc).splitlines()[0][:200]) from None
    return model, tokenizer


def load_musicgen(
    model_id: str, device: str = "auto", dtype: str = "auto", *, compile_step: bool | None = None
) -> MusicGen:
    """Load without caching (see `get_musicgen`). `compile_step` None = compile on CUDA only."""
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    start = time.perf_counter()
    if model_id in TINY_IDS:
        model, tokenizer = tiny_musicgen(model_id)
    else:
        model, tokenizer = _load_pretrained(model_id)
    return MusicGen(model, tokenizer, model_id=model_id, device=dev, dtype=dt,
                    load_seconds=time.perf_counter() - start, compile_step=compile_step)  # fmt: skip


def get_musicgen(
    model_id: str, device: str = "auto", dtype: str = "auto", *, compile_step: bool | None = None
) -> MusicGen:
    """The process-wide MusicGen for (model_id, device, dtype), loaded on first use.

    Raises `ModelUnavailableError` for a model that cannot be loaded.
    """
    key = (model_id, device, dtype, compile_step)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = load_musicgen(model_id, device, dtype, compile_step=compile_step)
        return _MODELS[key]


def release_musicgen(*, keep: str | None = None) -> list[str]:
    """Forget the process-wide MusicGens whose model id is not `keep` (all when None) and return their
    ids; their memory (GPU memory included) is freed once nothing else refers to them."""
    with _MODELS_LOCK:
        dropped = [key for key in _MODELS if key[0] != keep]
        for key in dropped:
            del _MODELS[key]
    if dropped:
        import gc

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return [key[0] for key in dropped]
