"""What a MusicGen model id can do, answered without loading it (no torch import).

Used where a request is validated (REST, sensor, render) so that a request a model cannot honour is
refused up front, naming the field, instead of failing minutes later inside a run.
"""

from __future__ import annotations

import json
from pathlib import Path

MELODY_MODEL_TYPE = "musicgen_melody"


def supports_melody(model_id: str) -> bool:
    """True when `model_id` has melody conditioning: `facebook/musicgen-melody[-large]`,
    `tiny-random-melody`, or a local `save_pretrained` folder whose config says `musicgen_melody`."""
    folder = Path(model_id).expanduser()
    config = folder / "config.json"
    if config.is_file():
        try:
            return json.loads(config.read_text()).get("model_type") == MELODY_MODEL_TYPE
        except (OSError, ValueError):
            return False
    return "melody" in model_id.rsplit("/", 1)[-1].lower()
