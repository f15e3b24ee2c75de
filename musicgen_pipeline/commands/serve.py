"""`musicgen-pipeline serve`: the REST API (the older service's contract) on uvicorn.

Loopback by default; every job becomes a Dagster run on the configured instance (DAGSTER_HOME, or
$MUSICGEN_DATA/dagster_home), so jobs keep running and stay visible across restarts of this server.
"""

from __future__ import annotations

import argparse

from musicgen_pipeline.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the REST API (POST /generate, /generate/soundtrack, /separate; GET /jobs, /files, /metrics)",
        description="Serve the REST API; each job runs as a Dagster run visible in the Dagster UI.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, loopback only)"
    )
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port}: must be between 0 and 65535")
    import uvicorn

    from musicgen_pipeline.api import create_app
    from musicgen_pipeline.instance import dagster_home
    from musicgen_pipeline.settings import get_settings

    settings = get_settings()  # bad settings fail here, as one line
    home = dagster_home(settings.data_dir)
    app = create_app(settings)
    print(
        f"REST API on http://{args.host}:{args.port} (data: {settings.data_dir}, DAGSTER_HOME: {home})",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0
