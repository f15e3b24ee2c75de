"""Listening pages served by the REST app (`musicgen-pipeline serve`) under ``/listen``.

`partition_view` reads a partition folder (the one place that knows its layout), `pages` renders
HTML, `picture` draws the soundtrack edge to edge in time, `routes.listen_router` wires them into the
app; `static/` holds the page's CSS and JS (package data, no build step).
"""

from musicgen_pipeline.api.listen.routes import PREFIX, listen_router

__all__ = ["PREFIX", "listen_router"]
