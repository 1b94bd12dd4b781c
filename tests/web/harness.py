"""The harness page's Python (run by Pyodide in headless Chromium), importable natively too.

The same :func:`play` drives the seeded slime volleyball episode in the browser and in the
native parity run of ``tests/browser/test_web_harness.py``: same key schedule, same simulated
clock, so the two sets of records must be equal. ``main()`` is the page's entry point; the
query string picks the scenario:

* ``scenario=units``   web.py in the browser: query parameters, localStorage, promises,
  run_sync; msgpack measurements; ONNX timings and a softmax-sampling parity sample.
* ``scenario=episode`` the seeded episode, the AI through onnxruntime-web, records uploaded
  with UploadSink over the browser's WebSocket (``ws=`` gives the server).
* ``scenario=reload``  a StudyRun with the game; ``phase=1`` loses the network after a
  while, keeps playing slowly (batches pile up in localStorage) and waits to be closed;
  ``phase=2`` (the same participant, reopened) resends, resumes the run and finishes.

Results go to the harness server with ``POST /report/<name>``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import time
from typing import Any

SLIME = "examples/slime_volleyball/human_ai.py"
EXPERIMENT_ID = "slime_human_ai"
SEED = 11
MAX_STEPS = 600


def key_schedule(iterations: int, seed: int = 2024) -> dict[int, list[tuple[str, str]]]:
    """Scripted key input: {loop iteration: [("press"|"release", key), ...]}."""
    rng = random.Random(seed)
    held: set[str] = set()
    events: dict[int, list[tuple[str, str]]] = {}
    for i in range(3, iterations, 7):
        key = rng.choice(("left", "right", "up"))
        if key in held:
            held.discard(key)
            events.setdefault(i, []).append(("release", key))
        else:
            held.add(key)
            events.setdefault(i, []).append(("press", key))
    return events


def seeded_game(game: Any, max_steps: int = MAX_STEPS) -> Any:
    return dataclasses.replace(game, max_steps=max_steps, episodes=1, seeds=SEED)


async def play(game: Any, participant: str, sink: Any, *, visit_id: str | None = None,
               pace_s: float = 0.0, on_tick: Any = None) -> Any:
    """Play ``game`` to its end on a simulated clock (iteration i is at i/fps seconds),
    pressing keys per :func:`key_schedule`; records go to ``sink.write``. Yields to the
    event loop every iteration (the upload task runs meanwhile)."""
    from igym.session import Session
    session = Session(game, participant, visit_id=visit_id)
    schedule = key_schedule(10 * (game.max_steps or 3000) + 100)
    dt = 1.0 / game.fps
    i = 0
    while not session.finished:
        now = i * dt
        for kind, key in schedule.get(i, ()):
            (session.press if kind == "press" else session.release)(key, now)
        session.tick(now)
        sink.write(session.take_records())
        if on_tick is not None:
            await on_tick(session, i)
        i += 1
        await asyncio.sleep(pace_s)
    sink.write(session.take_records())
    return session


class ListSink:
    """Collects records (the native parity run)."""

    def __init__(self) -> None:
        self.records: list = []

    def write(self, records: Any) -> None:
        self.records.extend(records)


# --- the page ---------------------------------------------------------------------------

async def report(name: str, value: Any) -> None:
    import js
    from igym import web
    from pyodide.ffi import to_js
    options = to_js({"method": "POST", "body": json.dumps(value)}, dict_converter=js.Object.fromEntries)
    await web.wait(js.fetch(f"/report/{name}", options))


async def main() -> None:
    from igym import web
    params = web.query_params()
    scenario = params.get("scenario", "units")
    try:
        if scenario == "units":
            result = await units(params)
        elif scenario == "episode":
            result = await episode(params)
        elif scenario == "reload":
            result = await reload(params)
        else:
            raise ValueError(f"unknown scenario {scenario!r}")
        await report("done", result)
    except BaseException as error:  # everything goes back to the test
        import traceback
        await report("error", traceback.format_exc())
        raise error


def _load_game() -> tuple[Any, Any]:
    from igym.loader import load_experiment
    experiment = load_experiment(SLIME)
    return experiment, experiment.scenes[0]


async def units(params: dict[str, str]) -> dict[str, Any]:
    import sys

    import js

    from igym import web
    out: dict[str, Any] = {"runtime": web.RUNTIME, "python": sys.version.split()[0], "msgpack_backend": web.MSGPACK}
    out["query"] = params
    out["participant"] = web.participant_from_url()
    out["facts"] = web.study_facts()
    # localStorage: JSON values, keys by prefix, removal.
    storage = web.local_storage
    storage.set("igym:test:a", {"x": [1, 2.5, None, "é"]})
    storage.set("igym:test:b", 3)
    out["storage_get"] = storage.get("igym:test:a")
    out["storage_keys"] = storage.keys("igym:test:")
    storage.remove("igym:test:b")
    out["storage_after_remove"] = storage.keys("igym:test:")
    out["storage_raw"] = str(js.localStorage.getItem("igym:test:a"))
    storage.remove("igym:test:a")
    # Promises: awaited in the loop, and run_sync (JSPI) from sync code inside a task.
    promise = js.eval("new Promise((resolve) => setTimeout(() => resolve(42), 20))")
    out["wait"] = await web.wait(promise)
    out["can_run_sync"] = web.can_run_sync()

    async def in_task() -> Any:
        return web.run_sync(js.eval("new Promise((resolve) => setTimeout(() => resolve('sync ok'), 5))"))
    out["run_sync_in_task"] = await asyncio.ensure_future(in_task())
    # numpy and pygame must not be here (and the core must not need them).
    out["modules"] = sorted(m for m in ("numpy", "pygame", "onnxruntime", "websockets") if m in sys.modules)
    # The WebSocket resend path of UploadSink is covered by the episode/reload scenarios.
    out["msgpack"] = measure_msgpack()
    out["onnx"] = measure_onnx()
    out["boot"] = js.igymTimes.to_py() if hasattr(js, "igymTimes") else None
    return out


def typical_batch(n_steps: int = 30) -> dict[str, Any]:
    """What one second of slime play uploads: 30 StepRecords and a few key events."""
    from igym.records import EventRecord, StepRecord, to_wire
    rng = random.Random(5)
    records = []
    for step in range(n_steps):
        records.append(StepRecord("e" * 32, step, 1_700_000_000_000_000_000 + step * 33_333_333,
                                  ("agent_left", "agent_right"), {"agent_left": rng.randrange(6), "agent_right": 3},
                                  ["human", "policy"], {"agent_left": 0.0, "agent_right": 0.0},
                                  {"agent_left": False, "agent_right": False},
                                  {"agent_left": False, "agent_right": False}, ["left", ""],
                                  [1_700_000_000_000_000_000, None],
                                  False, None, f"{rng.getrandbits(64):016x}"))
        if step % 10 == 0:
            records.append(EventRecord("p1", 1_700_000_000_000_000_000 + step, "key_down",
                                       {"key": "left", "agent": "agent_left"}, "e" * 32))
    return {"t": "records", "b": "f" * 32 + "-1", "r": [to_wire(r) for r in records]}


def _time(fn: Any, repeat: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1e6


def measure_msgpack() -> dict[str, Any]:
    """µs to pack a typical one-second batch: msgpack's pure-Python fallback (when the
    harness served it), igym.web's small codec, and @msgpack/msgpack in JS (incl. to_js)."""
    import sys

    import js
    from pyodide.ffi import to_js

    from igym import web
    batch = typical_batch()
    out: dict[str, Any] = {}
    try:
        import msgpack  # noqa: F401 — the npm Pyodide core has no msgpack wheel
        out["msgpack_importable"] = True
    except ImportError:
        out["msgpack_importable"] = False
    packed = web.small_packb(batch)
    out["bytes"] = len(packed)
    out["igym_small_us"] = round(_time(lambda: web.small_packb(batch), 50), 1)
    out["igym_small_unpack_us"] = round(_time(lambda: web.small_unpackb(packed), 50), 1)
    sys.path.insert(0, "/home/pyodide/_extra")
    try:
        from msgpack import fallback  # served from the test machine's install, measurement only
        out["fallback_us"] = round(_time(lambda: fallback.Packer(use_bin_type=True).pack(batch), 50), 1)
        out["fallback_same_bytes"] = fallback.Packer(use_bin_type=True).pack(batch) == packed
    except ImportError as error:
        out["fallback_us"] = None
        out["fallback_error"] = str(error)
    finally:
        sys.path.remove("/home/pyodide/_extra")
        for name in [m for m in sys.modules if m == "msgpack" or m.startswith("msgpack.")]:
            del sys.modules[name]
    mp = getattr(js, "MessagePack", None)
    if mp is not None:
        options = to_js({"useBigInt64": True}, dict_converter=js.Object.fromEntries)

        def js_pack() -> Any:
            return mp.encode(to_js(batch, dict_converter=js.Object.fromEntries), options)
        out["js_msgpack_us"] = round(_time(js_pack, 50), 1)
        encoded = js_pack()
        out["js_bytes"] = int(encoded.length)
        out["js_same_bytes"] = bytes(encoded.to_bytes()) == packed
        only = js.eval("(e, o, x) => () => e(x, o)")(mp.encode, options,
                                                    to_js(batch, dict_converter=js.Object.fromEntries))
        out["js_encode_only_us"] = round(_time(lambda: only(), 50), 1)
        out["js_decoded_ok"] = web.small_unpackb(bytes(encoded.to_bytes()))["b"] == batch["b"]
    return out


def measure_onnx() -> dict[str, Any]:
    """Build the slime policy on onnxruntime-web; act() time; softmax draws for parity."""
    from igym.policy import OnnxPolicy
    path = "/home/pyodide/policies/slime_volleyball.onnx"
    start = time.perf_counter()
    policy = OnnxPolicy(path)
    created_ms = (time.perf_counter() - start) * 1e3
    rng = random.Random(3)
    observations = [[rng.uniform(-2, 2) for _ in range(12)] for _ in range(50)]
    act_us = _time(lambda: policy.act(observations[0]), 200)
    soft = OnnxPolicy(path, sample="softmax", seed=9, temperature=0.7)
    return {"backend": policy.backend.name, "version": policy.backend.version, "create_ms": round(created_ms, 1),
            "act_us": round(act_us, 1), "scores": [policy.scores(o) for o in observations[:5]],
            "argmax": [policy.act(o) for o in observations], "softmax": [soft.act(o) for o in observations]}


async def episode(params: dict[str, str]) -> dict[str, Any]:
    from igym.upload import UploadSink
    _, game = _load_game()
    pid = params["participant"]
    sink = UploadSink(params["ws"], pid, EXPERIMENT_ID, batch_s=1.0)
    start = time.perf_counter()
    session = await play(seeded_game(game), pid, sink)
    played_s = time.perf_counter() - start
    acked = await sink.aclose(30)
    return {"steps": session.total_steps, "played_s": round(played_s, 3), "acked_all": acked,
            "batches": sink.acked, "connections": sink.connections, "policy": session.seats.get("agent_right"),
            "last_error": sink.last_error, "refused": sink.refused, "token": sink.token}


async def reload(params: dict[str, str]) -> dict[str, Any]:
    from igym.study import StudyRun
    from igym.upload import UploadSink, load_run, save_run
    experiment, _ = _load_game()
    pid = params["participant"]
    phase = params.get("phase", "1")
    run = load_run(experiment, pid)
    resumed = run is not None
    if run is None:
        run = StudyRun(experiment, pid)
    sink = UploadSink(params["ws"], pid, EXPERIMENT_ID, batch_s=0.25)
    resumed_batches = sink.resumed_batches
    sink.write(run.take_records())
    visit = run.next_visit()
    save_run(run)
    sink.write(run.take_records())
    game = seeded_game(visit.scene, 300)

    if phase == "1":
        state = {"cut": False}

        async def on_tick(session: Any, i: int) -> None:
            if i == 100:
                await report("progress", {"acked": sink.acked})
                sink.server_url = "ws://127.0.0.1:9/"  # the network goes away
                sink.disconnect()
            if i == 200 and not state["cut"]:
                state["cut"] = True
                sink.flush()
                keys = len(sink.storage.keys(sink.prefix + "b:"))
                await report("ready", {"step": session.step, "saved_batches": keys, "visit_id": visit.visit_id,
                                       "acked": sink.acked})
        await play(game, pid, sink, visit_id=visit.visit_id, pace_s=0.01, on_tick=on_tick)
        await asyncio.sleep(3600)  # the test closes the tab before this ends
        return {}
    session = await play(game, pid, sink, visit_id=visit.visit_id)
    run.finish_visit("played")
    save_run(run)
    sink.write(run.take_records())
    after = run.next_visit()
    save_run(run)
    sink.write(run.take_records())
    acked = await sink.aclose(30)
    return {"resumed": resumed, "resumed_batches": resumed_batches, "visit_id": visit.visit_id,
            "steps": session.total_steps, "acked_all": acked, "status": run.status, "next": after is None,
            "left_in_storage": len(sink.storage.keys(sink.prefix + "b:"))}
