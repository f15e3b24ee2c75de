"""The Dagster code location: every definition under `musicgen_pipeline/defs/` (see its docstring).

`dagster dev -w workspace.yaml` (or `-m musicgen_pipeline.definitions -a defs`) loads `defs`. Importing
this module does not import torch: models load on first use inside a step. The project file the loader
reads (`dg.toml`, package data) names `musicgen_pipeline.defs` as the defs module, so an installed
package (no repository checkout) loads the same way.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from musicgen_pipeline import pool_wait

# Every process that executes this location's runs waits for pool slots without spinning, and stops
# on a signal while it waits (Dagster 1.13.27 does neither; see `pool_wait`).
pool_wait.install()

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
