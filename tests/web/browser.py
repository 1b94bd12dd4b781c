"""Headless Chromium, driven through the DevTools HTTP endpoints (open and close tabs).

No Playwright or WebDriver: the page reports its results to the harness server itself,
so the driver only needs ``PUT /json/new?<url>`` and ``GET /json/close/<id>``. Chromium
runs with a fresh profile, offline-friendly flags, and is killed (its own process only)
when the harness ends.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--no-default-browser-check",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0")


class Chromium:
    def __init__(self, binary: str = "/usr/bin/chromium", timeout: float = 30.0) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="igym-chromium-"))
        self.log_path = self.profile / "chromium.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        active = self.profile / "DevToolsActivePort"
        while not (active.is_file() and active.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"chromium did not start: {self.log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        self.port = int(active.read_text().split()[0])
        self.base = f"http://127.0.0.1:{self.port}"

    def _call(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(self.base + path, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        try:
            return json.loads(body)
        except ValueError:
            return body.decode(errors="replace")

    def open(self, url: str) -> str:
        """Open ``url`` in a new tab; returns the tab's id."""
        return self._call("/json/new?" + urllib.parse.quote(url, safe=""), "PUT")["id"]

    def close_tab(self, target: str) -> None:
        self._call(f"/json/close/{target}")

    def tabs(self) -> list[dict[str, Any]]:
        return [t for t in self._call("/json/list") if t.get("type") == "page"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
