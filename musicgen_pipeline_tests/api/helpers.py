"""Shared helpers of the REST tests: synthetic audio bytes and a tiny local HTTP file server."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import soundfile as sf


def tone_wav_bytes(seconds: float = 1.0, rate: int = 44_100, freq: float = 440.0, channels: int = 2) -> bytes:
    """A sine tone as 16-bit PCM WAV bytes."""
    t = np.arange(round(seconds * rate)) / rate
    mono = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    data = np.stack([mono] * channels, axis=1)
    buf = io.BytesIO()
    sf.write(buf, data, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


class _Handler(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes, float]]] = {}

    def do_GET(self) -> None:
        status, headers, body, delay = self.routes.get(self.path, (404, {}, b"missing", 0.0))
        if delay:
            time.sleep(delay)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.seen.append((self.path, self.headers.get("Host")))  # type: ignore[attr-defined]

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def file_server(
    routes: dict[str, tuple[int, dict[str, str], bytes, float]], host: str = "127.0.0.1"
) -> Iterator[ThreadingHTTPServer]:
    """Serve `routes` (path -> status, headers, body, delay seconds) on `host` at a free port."""
    handler = type("Handler", (_Handler,), {"routes": routes})
    server = ThreadingHTTPServer((host, 0), handler)
    server.seen = []  # type: ignore[attr-defined]
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
