"""A static server on 127.0.0.1 for the browser harness, and the page's report inbox.

Serves only what the harness page needs (every path is listed; nothing else is reachable):

* ``/pyodide/…``  the npm package ``pyodide`` (core: loader, wasm, stdlib zip, lock file)
* ``/ort/…``      onnxruntime-web's wasm backend: ``ort.wasm.min.js`` (the script tag,
  global ``ort``) and ``ort-wasm-simd-threaded.{mjs,wasm}`` (loaded from ``wasmPaths``)
* ``/msgpack/…``  ``@msgpack/msgpack``'s UMD build (global ``MessagePack``; measurements only)
* ``/web/…``      this folder's page (``harness.html``)
* ``/src/…``      the repo files the page writes into Pyodide's file system (``/files.json``
  lists them): igym's core, ``examples/slime_volleyball``, the slime ONNX policy, and the
  page's Python (``tests/web/harness.py`` → ``harness.py``)
* ``/pysrc/…``    optional extra Python for measurements (msgpack's pure-Python modules
  from the local install), listed in ``/extra.json``

``POST /report/<name>`` stores the JSON body under ``name`` (the page's results, logs and
errors); :meth:`HarnessServer.wait_report` waits for one. Bytes served are counted per
top-level folder, so a test can report the page's download size.
"""

from __future__ import annotations

import json
import mimetypes
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

PYODIDE_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json")
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
MSGPACK_JS_FILES = ("msgpack.min.js",)
TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
         ".json": "application/json", ".html": "text/html; charset=utf-8", ".zip": "application/zip",
         ".py": "text/plain; charset=utf-8", ".onnx": "application/octet-stream"}


def repo_files() -> list[str]:
    """The repo files the page needs, relative to the repo (what a web build would ship)."""
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "igym").glob("*.py"))
    files += ["examples/__init__.py"]
    files += [f"examples/slime_volleyball/{name}.py" for name in ("__init__", "slime", "draw", "human_ai")]
    files += ["policies/slime_volleyball.onnx"]
    return files


class HarnessServer:
    """``with HarnessServer(node_modules) as server: server.url`` — serves until closed."""

    def __init__(self, node_modules: Path, extra_python: dict[str, Path] | None = None) -> None:
        node_modules = Path(node_modules)
        self.routes: dict[str, dict[str, Path]] = {
            "pyodide": {name: node_modules / "pyodide" / name for name in PYODIDE_FILES},
            "ort": {name: node_modules / "onnxruntime-web" / "dist" / name for name in ORT_FILES},
            "msgpack": {name: node_modules / "@msgpack" / "msgpack" / "dist.umd" / name for name in MSGPACK_JS_FILES},
            "web": {"harness.html": HERE / "harness.html"},
            "src": {name: REPO / name for name in repo_files()},
            "pysrc": dict(extra_python or {}),
        }
        self.routes["src"]["harness.py"] = HERE / "harness.py"
        self.reports: dict[str, list[Any]] = {}
        self.served: dict[str, int] = {}
        self.requests: list[str] = []
        self._cond = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                server.requests.append(path)
                if path == "/files.json":
                    return self._send(json.dumps(sorted(server.routes["src"])).encode(), ".json", "src")
                if path == "/extra.json":
                    return self._send(json.dumps(sorted(server.routes["pysrc"])).encode(), ".json", "pysrc")
                top, _, rest = path.lstrip("/").partition("/")
                file = server.routes.get(top, {}).get(rest)
                if file is None or not file.is_file():
                    self.send_error(HTTPStatus.NOT_FOUND)
                    return
                self._send(file.read_bytes(), file.suffix, top)

            def _send(self, body: bytes, suffix: str, top: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", TYPES.get(suffix) or mimetypes.guess_type("x" + suffix)[0]
                                 or "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)
                with server._cond:
                    server.served[top] = server.served.get(top, 0) + len(body)

            def do_POST(self) -> None:
                path = self.path.split("?", 1)[0]
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if not path.startswith("/report/"):
                    self.send_error(HTTPStatus.NOT_FOUND)
                    return
                try:
                    value = json.loads(body or b"null")
                except ValueError:
                    value = body.decode("utf-8", "replace")
                with server._cond:
                    server.reports.setdefault(path[len("/report/"):], []).append(value)
                    server._cond.notify_all()
                self.send_response(204)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="harness-http", daemon=True)
        self._thread.start()

    def wait_report(self, name: str, timeout: float, *, also: tuple[str, ...] = ("error",)) -> Any:
        """The latest report ``name`` (waiting up to ``timeout`` s); a report in ``also``
        (the page's ``error``) ends the wait with an AssertionError carrying it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for other in also:
                    if self.reports.get(other):
                        raise AssertionError(f"the page reported {other}: {self.reports[other][-1]}")
                if self.reports.get(name):
                    return self.reports[name][-1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    logs = "\n".join(map(str, self.reports.get("log", [])[-20:]))
                    raise TimeoutError(f"no {name!r} report from the page within {timeout} s; last logs:\n{logs}")
                self._cond.wait(min(remaining, 0.5))

    def clear(self) -> None:
        with self._cond:
            self.reports.clear()
            self.served.clear()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> HarnessServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
