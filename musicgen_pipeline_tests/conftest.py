"""Suite-wide test environment: offline models, a warm numba cache, few threads."""

from __future__ import annotations

import os
from pathlib import Path

# Must be set before transformers / huggingface_hub are imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "musicgen-pipeline" / "numba"))
Path(os.environ["NUMBA_CACHE_DIR"]).mkdir(parents=True, exist_ok=True)
