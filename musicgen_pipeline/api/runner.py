"""Starting a Dagster job for one partition in a detached process (used for `/separate` runs).

Like `launch.start_run_detached` (soundtrack renders), the child runs in its own session, so it
outlives a REST process that exits or restarts, and it writes the same pending record
(`outputs/<partition>/runs/<run_id>.json`) that `launch.run_progress` reads until the run exists.

``python -m musicgen_pipeline.api.runner JOB_NAME PARTITION_KEY RUN_ID [TAGS_JSON]`` is the child.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from musicgen_pipeline.launch import dagster_home, get_instance, partition_dir


def start_job_detached(job_name: str, key: str, run_id: str, tags: dict[str, str] | None = None) -> str:
    """Start `job_name` for partition `key` as run `run_id` in a detached child; return `run_id`."""
    folder = partition_dir(key) / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DAGSTER_HOME=str(dagster_home()))
    with (folder / f"{run_id}.log").open("ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "musicgen_pipeline.api.runner",
                job_name,
                key,
                run_id,
                json.dumps(tags or {}),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    # Reap the child when it ends (no zombie in a long-lived REST process); it never blocks the caller.
    threading.Thread(target=proc.wait, name=f"reap-{run_id[:8]}", daemon=True).start()
    record = {"run_id": run_id, "partition": key, "pid": proc.pid, "started": time.time(), "job": job_name}
    (folder / f"{run_id}.json").write_text(json.dumps(record), encoding="utf-8")
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
