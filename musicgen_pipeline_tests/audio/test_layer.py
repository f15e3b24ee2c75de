"""The audio core's layer rule: it imports neither torch nor dagster, nor the pipeline's settings,
and reads no environment variables (thresholds and options are parameters)."""

from __future__ import annotations

import ast
from pathlib import Path

import musicgen_pipeline.audio as audio_pkg

AUDIO_DIR = Path(audio_pkg.__file__).parent
FORBIDDEN_MODULES = ("dagster", "torch", "musicgen_pipeline.settings", "musicgen_pipeline.assets")


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            if any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES):
                found.append(f"{path.name}:{node.lineno} imports {name}")
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
            found.append(f"{path.name}:{node.lineno} reads os.{node.attr}")
        if isinstance(node, ast.Name) and node.id in ("get_settings", "environ", "getenv"):
            found.append(f"{path.name}:{node.lineno} uses {node.id}")
    return found


def test_audio_core_keeps_its_layer() -> None:
    files = sorted(AUDIO_DIR.glob("*.py"))
    assert len(files) > 5
    problems = [v for f in files for v in _violations(f)]
    assert problems == []


def test_the_check_catches_a_settings_read(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os\nfrom musicgen_pipeline.settings import get_settings\n"
        "x = os.environ.get('A')\ny = get_settings()\n"
    )
    assert len(_violations(bad)) == 3  # the import, os.environ, the call
