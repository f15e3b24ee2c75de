"""Starting a Dagster job for one partition in a detached process (used for `/separate` runs).

Like `launch.start_run_detached` (soundtrack renders), the child runs in its own session, so it
outlives a REST process that exits or restarts, and it writes the same pending record
(`outputs/<partition>/runs/<run_id>.json`) that `launch.run_progress` reads until the run exists.

``python -m musicgen_pipeline.api.runner JOB_NAME PARTITION_KEY RUN_ID [TAGS_JSON]`` is the child.
"""

from __future__ import annotations

import json
import sys

from musicgen_pipeline.launch import get_instance, spawn_detached


def start_job_detached(job_name: str, key: str, run_id: str, tags: dict[str, str] | None = None) -> str:
    """Start `job_name` for partition `key` as run `run_id` in a detached child; return `run_id`."""
    spawn_detached(
        ["musicgen_pipeline.api.runner", job_name, key, run_id, json.dumps(tags or {})],
        key,
        run_id,
        job=job_name,
    )
    return run_id


def run_job(job_name: str, key: str, run_id: str, tags: dict[str, str]) -> bool:
    from musicgen_pipeline.definitions import defs

    instance = get_instance()
    job = defs.resolve_job_def(job_name)
    result = job.execute_in_process(
        instance=instance, partition_key=key, run_id=run_id, tags=tags, raise_on_error=False
    )
    return result.success


def _main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(
            "usage: python -m musicgen_pipeline.api.runner JOB_NAME PARTITION_KEY RUN_ID [TAGS_JSON]",
            file=sys.stderr,
        )
        return 2
    job_name, key, run_id = argv[:3]
    tags = json.loads(argv[3]) if len(argv) == 4 else {}
    return 0 if run_job(job_name, key, run_id, tags) else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
