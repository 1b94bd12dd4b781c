"""Headless Chromium from the system (``/usr/bin/chromium``, Debian's package) under Playwright.

Playwright's own browser download does not work offline, so its Python API drives the
system's Chromium instead (``executable_path``), with the same offline-friendly flags as
:mod:`tests.web.browser`. Used by the dashboard's tests and its README screenshots.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any
from collections.abc import AsyncIterator

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
         "--mute-audio", "--no-default-browser-check"]


def chromium_binary() -> str | None:
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@contextlib.asynccontextmanager
async def chromium(binary: str) -> AsyncIterator[Any]:
    """A headless Chromium (a fresh profile each time), closed on exit."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=binary, args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()
