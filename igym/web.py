"""The browser glue: the only igym module that touches JavaScript (Pyodide and pygbag).

Everything else in igym is plain Python; what needs the page — its URL, ``localStorage``,
the browser's WebSocket, JS promises, navigation — goes through this module, which also
has a native stand-in for each piece so code written against it runs (and is tested) on
the desktop unchanged:

============================  ==================================  ===============================
                              in the browser                      natively
============================  ==================================  ===============================
``RUNTIME``                   ``"pyodide"`` or ``"pygbag"``       ``"native"``
``await wait(promise)``       Pyodide ``await p``;                awaits an awaitable, else
                              pygbag ``await platform.jsprom(p)``  returns the value
``run_sync(promise)``         Pyodide ``pyodide.ffi.run_sync``    as ``wait``, on a private loop
                              (JSPI: Chromium ≥ 137)
``query_params()``            ``location.search``                 ``$IGYM_QUERY`` (e.g. ``pid=p1``)
``local_storage``             ``window.localStorage`` (JSON)      :class:`MemoryStorage`
:class:`WebSocket`            the browser's WebSocket             the ``websockets`` package
``pack``/``unpack``           msgpack if importable, else igym's own small msgpack codec
============================  ==================================  ===============================

Nothing here imports numpy, pygame or (in the browser) ``websockets``.

Promises: Pyodide's JS proxies are awaitable; pygbag's are polled by
``platform.jsprom``. ``run_sync`` blocks Python until a promise settles without leaving
the current frame; it needs WebAssembly JSPI (``WebAssembly.Suspending``, on by default
since Chromium 137) and Python entered through an async call (``runPythonAsync``, or any
asyncio task of the page): that is how :class:`igym.policy.OnnxPolicy` calls
onnxruntime-web's async ``session.run`` from the sync ``act``. pygbag has no JSPI, so
``run_sync`` raises there.

The WebSocket's bytes cross into JS as a ``Uint8Array`` in Pyodide; in pygbag (whose FFI
converts fewer types) they cross as base64 text. Messages on the socket are binary in both.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from typing import Any
from urllib.parse import parse_qsl

# msgpack for the browser, re-exported (``as``) for the page's code and igym.upload
from .packing import MSGPACK as MSGPACK, pack as pack, small_packb as small_packb, small_unpackb as small_unpackb
from .packing import unpack as unpack


def _detect() -> str:
    """pygbag, Pyodide (both report ``sys.platform == "emscripten"``) or native.

    A native process never tries ``import pyodide``: pygbag's package ships a ``pyodide``
    shim that, once pygbag is imported (its build tool, the tests), would be found and
    would fail looking for the browser's window.
    """
    if sys.platform != "emscripten":
        return "native"
    import platform as pygbag_platform
    if hasattr(pygbag_platform, "jsprom"):
        return "pygbag"
    return "pyodide"


RUNTIME: str = _detect()
IN_BROWSER = RUNTIME != "native"

if IN_BROWSER:  # pragma: no cover — exercised by tests/browser/test_web_harness.py in Chromium
    import js as js  # pygbag aliases window.globalThis as ``js``; Pyodide ships it (``as``: re-exported)
else:
    js = None

MAX_ID = 64  # the wire's limit on a participant id


# --- promises ---------------------------------------------------------------------------

async def wait(promise: Any) -> Any:
    """The value of a JS promise (or of any awaitable natively), awaited in the running loop."""
    if RUNTIME == "pygbag":  # pragma: no cover
        import platform as pygbag_platform
        return await pygbag_platform.jsprom(promise)  # type: ignore[attr-defined]  # pygbag's platform, not the stdlib's
    if hasattr(promise, "__await__"):
        return await promise
    return promise


def can_run_sync() -> bool:
    """Whether :func:`run_sync` works here and now (Pyodide with JSPI, inside an async entry)."""
    if RUNTIME != "pyodide":
        return RUNTIME == "native"
    try:
        from pyodide.ffi import can_run_sync as pyodide_can_run_sync
    except ImportError:  # pragma: no cover — older Pyodide
        return False
    return bool(pyodide_can_run_sync())


def run_sync(promise: Any) -> Any:
    """Block until ``promise`` settles and return its value (see the module docstring)."""
    if RUNTIME == "pyodide":  # pragma: no cover
        from pyodide.ffi import run_sync as pyodide_run_sync
        return pyodide_run_sync(promise)
    if RUNTIME == "pygbag":  # pragma: no cover
        raise RuntimeError("pygbag has no JSPI: a JS promise cannot be awaited from sync code — "
                           "await it with igym.web.wait() in a coroutine")
    if hasattr(promise, "__await__"):
        async def _await() -> Any:
            return await promise
        return asyncio.run(_await())
    return promise


# --- the page's URL ---------------------------------------------------------------------

def query_params(search: str | None = None) -> dict[str, str]:
    """The page's query parameters (``?a=1&b=2`` → ``{"a": "1", "b": "2"}``; the first of a
    repeated name wins). Natively they come from ``$IGYM_QUERY`` so drivers can be tested."""
    if search is None:
        search = str(js.location.search) if IN_BROWSER else os.environ.get("IGYM_QUERY", "")
    params: dict[str, str] = {}
    for name, value in parse_qsl(search.lstrip("?"), keep_blank_values=True):
        params.setdefault(name, value)
    return params


PARTICIPANT_PARAMS = ("participant", "PROLIFIC_PID", "pid")


def participant_from_url(params: dict[str, str] | None = None) -> str | None:
    """The participant id the recruiting site put in the URL: the first non-empty of
    ``participant``, ``PROLIFIC_PID`` and ``pid``; None if there is none (or it is not a
    usable id: over 64 characters or with control characters)."""
    params = query_params() if params is None else params
    for name in PARTICIPANT_PARAMS:
        value = params.get(name, "").strip()
        if value:
            if len(value) > MAX_ID or any(ord(c) < 32 or ord(c) == 127 for c in value):
                return None
            return value
    return None


def study_facts(params: dict[str, str] | None = None) -> dict[str, str | None]:
    """What else the URL says: Prolific's ``STUDY_ID`` and ``SESSION_ID`` (kept as the
    participant's meta data) and ``condition`` (an experimenter's override for piloting:
    give it to ``StudyRun(condition=...)``, which checks the name). Missing ones are None."""
    params = query_params() if params is None else params
    return {"study_id": params.get("STUDY_ID") or None, "session_id": params.get("SESSION_ID") or None,
            "condition": params.get("condition") or None}


# --- localStorage -----------------------------------------------------------------------

class MemoryStorage:
    """``localStorage`` natively: JSON values in a dict (so they round-trip as in the browser)."""

    def __init__(self) -> None:
        self._items: dict[str, str] = {}

    def get(self, key: str, default: Any = None) -> Any:
        text = self._items.get(key)
        return default if text is None else json.loads(text)

    def set(self, key: str, value: Any) -> None:
        self._items[key] = json.dumps(value)

    def remove(self, key: str) -> None:
        self._items.pop(key, None)

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self._items if k.startswith(prefix))


class BrowserStorage(MemoryStorage):  # pragma: no cover — runs in the browser
    """``window.localStorage`` with JSON values. ``set`` raises ``OSError`` when the quota
    (about 5 MB per site) is full."""

    def __init__(self) -> None:
        self._store = js.window.localStorage

    def get(self, key: str, default: Any = None) -> Any:
        text = self._store.getItem(key)  # a str, or JS null (Pyodide's jsnull, not None)
        return json.loads(text) if isinstance(text, str) else default

    def set(self, key: str, value: Any) -> None:
        try:
            self._store.setItem(key, json.dumps(value))
        except Exception as error:  # noqa: BLE001 — a JS QuotaExceededError
            raise OSError(f"localStorage is full: {error}") from None

    def remove(self, key: str) -> None:
        self._store.removeItem(key)

    def keys(self, prefix: str = "") -> list[str]:
        store = self._store
        names = (store.key(i) for i in range(int(store.length)))
        return sorted(k for k in names if isinstance(k, str) and k.startswith(prefix))


local_storage: MemoryStorage = BrowserStorage() if IN_BROWSER else MemoryStorage()


# --- WebSocket --------------------------------------------------------------------------

class ConnectionClosed(ConnectionError):
    """The WebSocket closed (``code``/``reason`` as the server sent them, if it did)."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


# A small JS object per socket: it owns the browser WebSocket and queues what arrives, so
# Python only calls plain methods (no Python callbacks held by JS: no proxies to leak, and
# the same code works with pygbag's FFI, which converts fewer types than Pyodide's).
_JS_SOCKET = r"""
(function (url) {
  const s = {ws: new WebSocket(url), inbox: [], state: 0, code: undefined, reason: "", waiter: null};
  s.ws.binaryType = "arraybuffer";
  const wake = () => { const w = s.waiter; s.waiter = null; if (w) w(); };
  s.ws.onopen = () => { s.state = 1; wake(); };
  s.ws.onmessage = (e) => { s.inbox.push(new Uint8Array(e.data)); wake(); };
  s.ws.onclose = (e) => { s.state = 3; s.code = e.code; s.reason = e.reason; wake(); };
  s.ws.onerror = () => { wake(); };
  s.changed = () => new Promise((resolve) => { s.waiter = resolve; });
  // undefined, not null: Pyodide turns undefined into None (null into jsnull)
  s.take = () => s.inbox.length ? s.inbox.shift() : undefined;
  s.takeB64 = () => {
    if (!s.inbox.length) return undefined;
    const bytes = s.inbox.shift(); let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000)
      text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(text);
  };
  s.send = (data) => {
    if (typeof data === "string") {
      const t = atob(data); data = new Uint8Array(t.length);
      for (let i = 0; i < t.length; i++) data[i] = t.charCodeAt(i);
    }
    s.ws.send(data);
  };
  s.buffered = () => s.ws.bufferedAmount;
  s.close = (code, reason) => { try { s.ws.close(code, reason); } catch (e) {} };
  return s;
})
"""


class _BrowserWebSocket:  # pragma: no cover — runs in Chromium (tests/browser/test_web_harness.py)
    """The browser's WebSocket, binary messages, with an asyncio interface."""

    _factory: Any = None

    def __init__(self) -> None:
        self._s: Any = None

    async def connect(self, url: str, timeout: float = 10.0) -> None:
        cls = type(self)
        if cls._factory is None:
            cls._factory = js.eval(_JS_SOCKET)
        self._s = cls._factory(url)
        deadline = asyncio.get_running_loop().time() + timeout
        while int(self._s.state) == 0:
            if asyncio.get_running_loop().time() > deadline:
                self.close()
                raise ConnectionClosed(None, f"no connection to {url} within {timeout} s")
            await self._changed(deadline)
        if int(self._s.state) != 1:
            raise ConnectionClosed(self._s.code, str(self._s.reason or ""))

    async def _changed(self, deadline: float | None = None) -> None:
        if RUNTIME == "pyodide":
            waiter = asyncio.ensure_future(wait(self._s.changed()))
            remaining = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
            done, _ = await asyncio.wait([waiter], timeout=remaining)
            if not done:
                waiter.cancel()
        else:  # pygbag: poll once per frame
            await asyncio.sleep(0.016)

    async def send(self, data: bytes) -> None:
        s = self._s
        if s is None or int(s.state) != 1:
            raise ConnectionClosed(None if s is None else s.code, "" if s is None else str(s.reason or ""))
        if RUNTIME == "pyodide":
            from pyodide.ffi import to_js
            s.send(to_js(bytes(data)))
        else:
            s.send(base64.b64encode(data).decode("ascii"))

    async def recv(self) -> bytes:
        s = self._s
        while True:
            if s is None:
                raise ConnectionClosed
            if RUNTIME == "pyodide":
                item = s.take()
                if item is not None:
                    return bytes(item.to_bytes())
            else:
                item = s.takeB64()
                if item is not None:
                    return base64.b64decode(str(item))
            if int(s.state) == 3:
                raise ConnectionClosed(s.code, str(s.reason or ""))
            await self._changed()

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self._s is not None:
            self._s.close(code, reason)


class _NativeWebSocket:
    """The same interface over the ``websockets`` package (desktop code and tests)."""

    def __init__(self) -> None:
        self._ws: Any = None

    async def connect(self, url: str, timeout: float = 10.0) -> None:
        from websockets.asyncio.client import connect
        try:
            self._ws = await asyncio.wait_for(
                connect(url, compression=None, ping_interval=None, max_size=2**22, open_timeout=timeout), timeout)
        except (TimeoutError, OSError) as error:
            raise ConnectionClosed(None, f"no connection to {url}: {error}") from None
        except Exception as error:  # noqa: BLE001 — handshake refused (websockets' InvalidStatus, ...)
            raise ConnectionClosed(None, f"no connection to {url}: {error}") from None

    async def send(self, data: bytes) -> None:
        import websockets
        if self._ws is None:
            raise ConnectionClosed
        try:
            await self._ws.send(data)
        except websockets.ConnectionClosed as closed:
            raise _closed(closed) from None

    async def recv(self) -> bytes:
        import websockets
        if self._ws is None:
            raise ConnectionClosed
        try:
            data = await self._ws.recv()
        except websockets.ConnectionClosed as closed:
            raise _closed(closed) from None
        return data if isinstance(data, bytes) else data.encode()

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self._ws is not None:
            try:
                asyncio.get_running_loop().create_task(self._ws.close(code, reason))
            except RuntimeError:  # no running loop: drop the transport
                transport = getattr(self._ws, "transport", None)
                if transport is not None:
                    transport.abort()


def _closed(closed: Any) -> ConnectionClosed:
    frame = closed.rcvd
    return ConnectionClosed(frame.code if frame else None, frame.reason if frame else "")


WebSocket = _BrowserWebSocket if IN_BROWSER else _NativeWebSocket
WebSocket.__doc__ = (WebSocket.__doc__ or "") + """

    ``await ws.connect(url)``; ``await ws.send(bytes)``; ``await ws.recv() -> bytes``
    (raises :class:`ConnectionClosed` once closed); ``ws.close()``.
    """

