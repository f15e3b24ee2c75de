"""The ``/listen`` routes of the REST app: read-only pages and the files they play.

- ``GET /listen/``: the index (`pages.index_page`); ``GET /listen/{key}``: one partition.
- ``GET /listen/{key}/audio/{relpath}``: a file of the partition's whitelist (`PartitionView.audio_files`),
  served by Starlette's `FileResponse`, which answers ``Range`` requests with 206 (the browser seeks
  without downloading the whole file) and 416 for a range past the end.
- ``GET /listen/{key}/picture.png``: the soundtrack's edge-to-edge picture (`picture.soundtrack_png`),
  computed once per file version (path, size, mtime) in a worker thread and kept in a small cache.
- ``GET /listen/{key}/pictures/{name}.png``: the asset pictures of ``pictures/``.
- ``GET /listen/_static/{listen.css,listen.js}``: package data.

Open like ``/files`` by default. With ``LISTEN_REQUIRE_API_KEY=true`` and ``API_KEY`` set, every route
needs the key: the ``X-API-Key`` header, or ``?key=`` once, after which an HttpOnly cookie holding a
digest of the key (never the key) lets the page's own audio and picture requests through.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from importlib import resources
from pathlib import Path
from threading import Lock

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from musicgen_pipeline.api.auth import API_KEY_HEADER, check_api_key
from musicgen_pipeline.api.files import media_type
from musicgen_pipeline.api.listen.pages import index_page, partition_page
from musicgen_pipeline.api.listen.partition_view import list_partitions, read_partition
from musicgen_pipeline.settings import Settings

PREFIX = "/listen"
COOKIE = "musicgen_listen"
STATIC = {"listen.css": "text/css; charset=utf-8", "listen.js": "text/javascript; charset=utf-8"}
NOT_FOUND = "<!doctype html><title>not found</title><p>No such soundtrack or file. <a href='/listen/'>All soundtracks</a></p>"
_PICTURES = 8


def _cookie_value(api_key: str) -> str:
    return hmac.new(api_key.encode("utf-8", "surrogateescape"), b"listen", hashlib.sha256).hexdigest()


class _PictureCache:
    """The last few soundtrack pictures, keyed by the file's identity (path, size, mtime)."""

    def __init__(self, size: int = _PICTURES) -> None:
        self._items: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._lock = Lock()
        self._size = size

    def get(self, path: Path) -> bytes:
        from musicgen_pipeline.api.listen.picture import soundtrack_png
        from musicgen_pipeline.audio.io import read_audio

        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        png = soundtrack_png(read_audio(path))
        with self._lock:
            self._items[key] = png
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return png


def listen_router(settings: Settings) -> APIRouter:
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    outputs = settings.outputs_dir
    pictures = _PictureCache()

    def refused(request: Request) -> Response | None:
        """None when the request may go on; else the 401/403 page."""
        if not (settings.listen_require_api_key and settings.api_key):
            return None
        cookie = request.cookies.get(COOKIE)
        if cookie and hmac.compare_digest(cookie, _cookie_value(settings.api_key)):
            return None
        provided = request.headers.get(API_KEY_HEADER) or request.query_params.get("key")
        failure = check_api_key(provided, settings.api_key)
        if failure is None:
            return None
        status, detail = failure
        return HTMLResponse(
            f"<!doctype html><title>{detail}</title><p>{detail}. These pages need the API key "
            "(LISTEN_REQUIRE_API_KEY): open this address once with <code>?key=YOUR_API_KEY</code> "
            "appended; a cookie then remembers it for this browser.</p>",
            status_code=status,
        )

    def remember(request: Request, response: Response) -> Response:
        if settings.listen_require_api_key and settings.api_key and request.query_params.get("key"):
            response.set_cookie(
                COOKIE, _cookie_value(settings.api_key), httponly=True, samesite="strict", path=PREFIX
            )
        return response

    @router.get("/_static/{name}")
    async def static(name: str, request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        if name not in STATIC:
            return HTMLResponse(NOT_FOUND, status_code=404)
        text = resources.files("musicgen_pipeline.api.listen").joinpath("static", name).read_bytes()
        return Response(text, media_type=STATIC[name], headers={"cache-control": "no-cache"})

    @router.get("", response_class=HTMLResponse)
    @router.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        views = await anyio.to_thread.run_sync(list_partitions, outputs)
        return remember(request, HTMLResponse(index_page(views, PREFIX)))

    @router.get("/{key}", response_class=HTMLResponse)
    async def partition(key: str, request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        view = await anyio.to_thread.run_sync(read_partition, outputs, key)
        if view is None:
            return HTMLResponse(NOT_FOUND, status_code=404)
        return remember(request, HTMLResponse(partition_page(view, PREFIX)))

    @router.get("/{key}/audio/{relpath:path}")
    async def audio(key: str, relpath: str, request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        view = await anyio.to_thread.run_sync(read_partition, outputs, key)
        path = view.audio_files.get(relpath) if view is not None else None
        if path is None:
            return HTMLResponse(NOT_FOUND, status_code=404)
        return FileResponse(path, media_type=media_type(path), headers={"cache-control": "no-cache"})

    @router.get("/{key}/picture.png")
    async def picture(key: str, request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        view = await anyio.to_thread.run_sync(read_partition, outputs, key)
        if view is None or view.soundtrack is None:
            return HTMLResponse(NOT_FOUND, status_code=404)
        png = await anyio.to_thread.run_sync(pictures.get, view.soundtrack.path)
        return Response(png, media_type="image/png", headers={"cache-control": "no-cache"})

    @router.get("/{key}/pictures/{name}")
    async def asset_picture(key: str, name: str, request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        view = await anyio.to_thread.run_sync(read_partition, outputs, key)
        path = view.pictures.get(name) if view is not None else None
        if path is None:
            return HTMLResponse(NOT_FOUND, status_code=404)
        return FileResponse(path, media_type="image/png")

    return router
