"""Device and precision choice: CUDA > MPS > CPU, half precision on GPUs, overridable.

`MUSICGEN_DEVICE` (auto | cpu | cuda | cuda:N | mps) and `MUSICGEN_DTYPE` (auto | float32 | float16 |
bfloat16) override the automatic choice. A device that is asked for but absent is an `InputError`.
"""

from __future__ import annotations

import torch

from musicgen_pipeline.errors import InputError

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
          "half": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}  # fmt: skip


def resolve_device(requested: str = "auto") -> torch.device:
    """`auto` -> the first of CUDA, MPS, CPU that is available; otherwise the named device, checked."""
    name = (requested or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(
            f"MUSICGEN_DEVICE={requested!r} is not a device (use auto, cpu, cuda, cuda:N or mps)"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(
                f"MUSICGEN_DEVICE={requested!r}: CUDA is not available on this machine (use auto or cpu)"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(
                f"MUSICGEN_DEVICE={requested!r}: only {torch.cuda.device_count()} CUDA device(s) present"
            )
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InputError(
                f"MUSICGEN_DEVICE={requested!r}: MPS is not available on this machine (use auto or cpu)"
            )
    elif device.type != "cpu":
        raise InputError(
            f"MUSICGEN_DEVICE={requested!r} is not supported (use auto, cpu, cuda, cuda:N or mps)"
        )
    return device


def resolve_dtype(requested: str, device: torch.device) -> torch.dtype:
    """`auto` -> float16 on CUDA/MPS (bfloat16 where the GPU supports it is not chosen: the released
    checkpoints were trained and are served in fp16), float32 on CPU; otherwise the named dtype."""
    name = (requested or "auto").strip().lower()
    if name == "auto":
        return torch.float16 if device.type in {"cuda", "mps"} else torch.float32
    if name not in DTYPES:
        raise InputError(
            f"MUSICGEN_DTYPE={requested!r} is not supported (use auto, float32, float16 or bfloat16)"
        )
    dtype = DTYPES[name]
    if device.type == "cpu" and dtype == torch.float16:
        raise InputError("MUSICGEN_DTYPE=float16 is not supported on CPU (use float32 or bfloat16)")
    return dtype
