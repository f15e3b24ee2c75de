"""Headless Chromium for the browser tests: Debian's `chromium` driven by Playwright for Python.

The browser is the system one (`make chromium` installs it as root; `CHROMIUM_PATH` points elsewhere),
never a Playwright download. Each launch gets a fresh profile folder and no background traffic.
Missing pieces fail the test with a one-line message saying what to install.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    configured = os.environ.get("CHROMIUM_PATH")
    found = configured or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not Path(found).exists():
        pytest.fail(
            "Chromium not found: run `make chromium` as root (Debian: apt-get install chromium) "
            "or set CHROMIUM_PATH to a Chromium binary",
            pytrace=False,
        )
    return found


@contextmanager
def browser_context(profile: Path) -> Iterator[Any]:
    """A Playwright browser context on the system Chromium, with its own user-data-dir `profile`."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "Playwright for Python is missing: pip install '.[dev]' (or `make install`)", pytrace=False
        )
    executable = chromium_path()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


class ConsoleLog:
    """Console errors and uncaught exceptions of a page."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on(
            "console",
            lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
