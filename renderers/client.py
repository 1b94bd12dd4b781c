"""The desktop client of the igym server: shows pages, lobby, game and end screens, sends keys.

Pages (info, consent, questionnaires, end) arrive as plain data, are rebuilt with the
scene classes of :mod:`igym.scenes` and shown with the same pygame_gui pages as in the lab;
how the participant left the page (and their answers) goes back to the server, which
checks the answers again and records them.

It keeps the participant id and the reconnect token (also on disk, or in the browser's
localStorage, so a client restarted after a crash resumes too), so when the connection
drops it reconnects by itself (:class:`igym.client_protocol.ClientProtocol`'s policy) and the server resumes the
game where it was. Lockstep games (``network="lockstep"``) run here, from the local copy
of the experiment file, with :class:`igym.lockstep.LockstepPlayer`; the server only relays
inputs. Frames arrive as deltas from the frame the server sent before on this connection
(TCP keeps them in order), so the client keeps the last few frames and acknowledges none.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, cast
from collections.abc import Callable, Coroutine

import pygame

from igym import answer_times, render, web, wire
from igym.autopilot import Autopilot
from igym.client_protocol import ClientProtocol
from igym.errors import IgymError
from igym.lockstep import LockstepPlayer, game_for_scene

from .app import Pacer
from .draw import FrameRenderer
from .typeface import REGULAR
from .window import Window, fit_window

KEEP_FRAMES = 64


@dataclass
class ClientState:
    """What the server told us so far."""

    pid: str
    protocol: ClientProtocol
    scene: dict[str, Any] | None = None
    frames: dict[int, render.Frame] = field(default_factory=dict)
    frame: render.Frame | None = None
    previous: render.Frame | None = None
    frame_at: float = 0.0
    lobby: dict[str, Any] | None = None
    status: str = ""
    end: dict[str, Any] | None = None
    frames_received: int = 0
    bytes_received: int = 0
    page: dict[str, Any] | None = None  # the page the server shows us now
    close_code: int | None = None  # how the server closed the last connection
    close_reason: str = ""
    answered: dict[str, dict[str, Any]] = field(default_factory=dict)  # visit id → our page message
    experiment: Any = None  # the local experiment file, which lockstep games run
    experiment_id: str | None = None  # what the server hosts
    lockstep: LockstepPlayer | None = None

    @property
    def token(self) -> str | None:
        return self.protocol.token


def token_store(url: str, pid: str) -> tuple[Any, Any]:
    """Load and save the reconnect token of ``pid`` at ``url``: in the browser's localStorage,
    natively in ``$XDG_CACHE_HOME/igym/tokens.json`` — so a restarted client resumes."""
    key = f"igym-token {url} {pid}"
    if web.IN_BROWSER:
        return (lambda: web.local_storage.get(key)), (lambda token: web.local_storage.set(key, token))
    import json
    import os
    from pathlib import Path
    path = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "igym" / "tokens.json"

    def read() -> dict[str, str]:
        try:
            tokens: dict[str, str] = json.loads(path.read_text())
            return tokens
        except (OSError, ValueError):
            return {}

    def save(token: str) -> None:
        tokens = read()
        tokens[key] = token
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(tokens))
        os.replace(temporary, path)
    return (lambda: read().get(key)), save


async def _reply(connection: Any, message: dict[str, Any]) -> None:
    """Send a message; if the server is closing, keep reading what it already sent."""
    try:
        await connection.send(wire.pack(message))
    except web.ConnectionClosed:
        pass


async def _receive(connection: Any, state: ClientState) -> None:
    """Read server messages until the connection closes (its code and reason are kept)."""
    try:
        while True:
            data = await connection.recv()
            await _handle(connection, state, wire.unpack(data), len(data))
    except web.ConnectionClosed as closed:
        state.close_code, state.close_reason = closed.code, closed.reason


async def _handle(connection: Any, state: ClientState, message: dict[str, Any], size: int) -> None:
    """Act on one server message (frames are decoded here, pages queued for the loop)."""
    received = state.protocol.receive(message)
    for reply in state.protocol.take_outbox():  # pongs
        await _reply(connection, reply)
    if received is None:
        return
    message = received
    kind = message.get("t")
    if state.lockstep is not None and state.lockstep.receive(message, time.monotonic()):
        return
    if kind == "frame":
        base = message["base"]
        previous = state.frames.get(base) if base >= 0 else None
        if base >= 0 and previous is None:
            return  # a base we never had (cannot happen over one TCP connection): skip
        frame = render.decode(message["d"], previous)
        state.frames[message["n"]] = frame
        state.frames.pop(message["n"] - KEEP_FRAMES, None)
        state.previous, state.frame, state.frame_at = state.frame, frame, time.monotonic()
        state.frames_received += 1
        state.bytes_received += size
        state.lobby = None
    elif kind == "welcome":
        state.experiment_id = message.get("experiment")
    elif kind == "page":
        done = state.answered.get(message["v"])
        if done is not None:  # answered before the connection dropped: say it again
            await _reply(connection, done)
        else:
            state.page = message
    elif kind == "scene":
        state.scene = message
        state.frames.clear()
        state.frame = state.previous = None
        state.lockstep = None
        if message.get("net") == "lockstep":
            state.lockstep = _lockstep_player(state, message)
            if state.lockstep is None:
                connection.close()
    elif kind == "lobby":
        state.lobby = message
    elif kind == "status":
        state.status = message["text"]
    elif kind == "end":
        state.end = message
    elif kind == "error":
        state.status = message.get("reason", "error")


def _lockstep_player(state: ClientState, scene: dict[str, Any]) -> LockstepPlayer | None:
    """This computer's copy of a lockstep game; without the experiment file it cannot play."""
    experiment = state.experiment
    if experiment is None or (state.experiment_id and experiment.id != state.experiment_id):
        have = f"experiment {experiment.id!r}" if experiment is not None else "no experiment file"
        state.end = {"outcome": "error", "text": f"This game runs on your computer (lockstep) and needs the server's "
                                                 f"experiment file {state.experiment_id!r}, but the client has {have}: "
                                                 f"start it with python -m igym.play FILE --connect URL"}
        return None
    try:
        return LockstepPlayer(game_for_scene(experiment, scene), scene, state.pid)
    except IgymError as error:
        state.end = {"outcome": "error", "text": f"This game cannot run here: {error}"}
        return None



class _Screen:
    """The window, created when the first scene says how big the canvas is."""

    def __init__(self, headless: bool, fullscreen: bool) -> None:
        self.headless = headless
        self.fullscreen = fullscreen
        self.window: Window | None = None
        self.renderer: FrameRenderer | None = None
        self.scene: dict[str, Any] | None = None
        self._label: tuple[tuple[str, tuple[int, int]], pygame.Surface] | None = None

    def ensure(self, size: tuple[int, int]) -> Window:
        if self.window is None:
            self.window = Window(fit_window(size), headless=self.headless, fullscreen=self.fullscreen, title="igym")
        else:
            self.window.resize(fit_window(size))
        return self.window

    def show(self, state: ClientState) -> Window:
        """Draw what ``state`` holds now (the window is opened on the first call); returns the window."""
        player = state.lockstep
        if player is not None and player.session.frame is not None:
            state.frame, state.previous = player.session.frame, player.session.previous_frame
        if self.window is None:
            canvas = tuple(state.scene["canvas"]) if state.scene else (800, 450)
            self.window = Window(fit_window(canvas, hud=True), headless=self.headless, fullscreen=self.fullscreen,
                                 title="igym")
        if state.scene is not None and state.scene is not self.scene:
            self.scene = state.scene
            self.window.resize(fit_window(tuple(state.scene["canvas"]), hud=True))
            self.renderer = FrameRenderer(self.window.surface, tuple(state.scene["canvas"]),
                                          background=tuple(state.scene.get("bg", (0, 0, 0))), hud=True)
        surface = self.window.surface
        if state.frame is not None and self.renderer is not None and state.lobby is None:
            fps = state.scene.get("fps", 30) if state.scene else 30
            alpha = (player.session.alpha(time.monotonic()) if player is not None
                     else min(1.0, (time.monotonic() - state.frame_at) * fps))
            self.renderer.draw(state.frame, state.previous, alpha)
        else:
            surface.fill((20, 20, 24))
        text = self._message(state)
        if text:
            label = self._message_label(text, surface.get_size())
            surface.blit(label, label.get_rect(center=surface.get_rect().center))
        self.window.flip()
        if player is not None:
            player.session.note_frame(time.monotonic())  # frame timing, reported with each episode's end
        return self.window

    def _message_label(self, text: str, size: tuple[int, int]) -> pygame.Surface:
        """The message drawn in the bundled font, sized to the window (smaller when it would not
        fit its width); kept while the text and the window stay the same."""
        key = (text, size)
        if self._label is None or self._label[0] != key:
            points = max(16, round(size[1] / 26))
            font = pygame.font.Font(str(REGULAR), points)
            wide = font.size(text)[0]
            if wide > size[0] * 0.92:
                font = pygame.font.Font(str(REGULAR), max(10, int(points * size[0] * 0.92 / wide)))
            self._label = (key, font.render(text, True, (240, 240, 240)))
        return self._label[1]

    @staticmethod
    def _message(state: ClientState) -> str:
        if state.end is not None:
            text: str = state.end.get("text", "The study is complete.")
            return text
        if state.lobby is not None:
            left = max(0, state.lobby["timeout"] - state.lobby["elapsed"])
            return f"Waiting for {state.lobby['waiting']} more — {int(left) // 60}:{int(left) % 60:02d}"
        if state.status:
            return state.status
        if state.frame is None:
            return "Connecting…"
        return ""


async def run_client(url: str, pid: str, *, headless: bool = False, fullscreen: bool = False,
                     autopilot_seed: int | None = None, display_fps: float = 60.0,
                     screenshot: str | None = None, max_reconnect_s: float = 60.0,
                     experiment: Any = None) -> ClientState:
    """Play the experiment hosted at ``url`` until the server says it ended.

    ``experiment`` is the local copy of the server's experiment file: lockstep games run
    from it on this computer (authoritative games need none).
    """
    load_token, save_token = token_store(url, pid)
    protocol = ClientProtocol(pid, url, token=load_token(), max_reconnect_s=max_reconnect_s)
    state = ClientState(pid, protocol, experiment=experiment)
    screen = _Screen(headless, fullscreen)
    autopilot: Autopilot | None = None
    pacer = Pacer(display_fps)
    while state.end is None:
        try:
            connection = web.WebSocket()  # the browser's WebSocket in a web page, websockets natively
            state.close_code, state.close_reason = None, ""
            # A new connection starts with no game: the server sends the scene again if one is on
            # (a worker that resumed us after another died has none: keys for it would be refused).
            state.scene, state.frame, state.previous = None, None, None
            state.frames.clear()
            await connection.connect(protocol.url)
            try:
                await connection.send(wire.pack(protocol.hello()))
                receiver = asyncio.create_task(_receive(connection, state))
                sending = _Sends()
                held: set[str] = set()
                saved_token = state.token
                while not receiver.done():
                    if state.token != saved_token:
                        saved_token = state.token
                        save_token(saved_token)
                    if state.page is not None:
                        def send(message: dict[str, Any], sending: _Sends = sending,
                                 connection: Any = connection) -> None:
                            sending.spawn(_reply(connection, message))  # this connection's, bound now
                        reply = await _show_page(screen, state, pacer, autopilot_seed, send=send)
                        if reply is None:
                            connection.close()
                            state.end = {"outcome": "quit", "text": "quit"}
                            break
                        state.answered[reply["v"]] = reply
                        state.page = None
                        screen.scene = None  # the game screen is rebuilt for the next scene
                        await _reply(connection, reply)
                        continue
                    keys: set[str] = set(state.scene["keys"]) if state.scene else set()
                    seat = state.scene["seat"] if state.scene else None
                    if autopilot_seed is not None and keys and (autopilot is None or set(autopilot.keys) != keys):
                        autopilot = Autopilot(keys, autopilot_seed)
                    window = screen.show(state)
                    events = []
                    for event in window.poll():
                        if event.kind in ("down", "up") and event.key in keys:
                            events.append((event.key, event.kind == "down"))
                        elif event.kind == "quit":
                            connection.close()
                            state.end = {"outcome": "quit", "text": "quit"}
                        elif event.kind == "focus":
                            await connection.send(wire.pack({"t": "focus", "f": int(event.gained)}))
                    if autopilot is not None and state.frame is not None:
                        presses, releases = autopilot.poll(time.monotonic())
                        events += [(k, False) for k in releases] + [(k, True) for k in presses]
                    player = state.lockstep
                    for key, down in events:
                        if seat is not None and (down != (key in held)):
                            (held.add if down else held.discard)(key)
                            if player is not None:
                                (player.press if down else player.release)(key, time.monotonic())
                            else:
                                await connection.send(wire.pack({"t": "key", "seat": seat, "k": key,
                                                                 "d": int(down)}))
                    if player is not None:
                        try:
                            await _play_steps(player, connection, pacer)
                        except Exception as error:  # noqa: BLE001 — the experiment's env or hooks failed here
                            state.end = {"outcome": "error", "text": f"The game failed on this computer: "
                                                                     f"{type(error).__name__}: {error}"}
                            state.lockstep = None
                            connection.close()  # the server's grace window and dropout rule take over
                    await pacer.wait_frame()  # sleep, then spin to the frame's deadline: steady frames
                await receiver
            finally:
                connection.close()
        except (OSError, web.ConnectionClosed):
            pass
        if state.end is None:
            closed = protocol.closed(state.close_code, state.close_reason)
            delay = protocol.retry_delay()
            if closed.final:  # the server closed on purpose (study complete, refused, wrong version)
                state.end = {"outcome": "closed", "text": f"The server closed the connection: "
                                                          f"{closed.reason or closed.code}"}
            elif delay is None:
                state.end = {"outcome": "connection_lost", "text": "The connection to the server was lost."}
            else:
                await asyncio.sleep(delay)
    if screen.window is not None:
        screen.show(state)
        if screenshot:
            screen.window.screenshot(screenshot)
        screen.window.close()
    return state


async def _play_steps(player: LockstepPlayer, connection: Any, pacer: Pacer) -> None:
    """Take the lockstep steps due before the next frame, each at its own deadline, and send
    what they produce: inputs leave when their step is taken, not on the next frame (that
    would add up to a display frame to every input's way to the others)."""
    frame_at = time.monotonic() + max(0.0, pacer.deadline + pacer.period - pacer.now())
    while True:
        player.update(time.monotonic())
        for message in player.take_outbox():
            await _reply(connection, message)  # a closing server's end message is still to be read
        due = player.session.next_step_at
        if due is None or due >= frame_at or player.stalled_since is not None or player.finished:
            return
        await asyncio.sleep(max(0.0, due - time.monotonic()))


class _Sends:
    """Messages sent while a page is on screen (its focus changes): each send is a task, kept
    until it is done so none is lost to the garbage collector."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, send: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(send)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


async def _show_page(screen: _Screen, state: ClientState, clock: Any, autopilot_seed: int | None,
                     send: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any] | None:
    """Show the server's page; returns the page message to send back (None: the window closed):
    the outcome, a survey's answers and when each was given (``tm``). Focus changes on the page
    go to the server as they happen (``send``), recorded there with the page's visit."""
    import os
    import random
    import tempfile

    from igym.scenes import page_from_wire

    from .pages import show_page

    message = cast("dict[str, Any]", state.page)  # called only with a page to show
    scene = page_from_wire(message["page"])
    image = message.get("image")
    folder = None
    if image and getattr(scene, "image", None):
        folder = tempfile.mkdtemp(prefix="igym-page-")
        scene.image = os.path.join(folder, "image.png")
        with open(scene.image, "wb") as file:
            file.write(image)
    elif getattr(scene, "image", None):
        scene.image = None  # the server could not send it
    window = screen.ensure((1280, 720))
    rng = random.Random(f"{autopilot_seed}:{message['v']}") if autopilot_seed is not None else None
    def on_event(kind: str, data: dict[str, Any]) -> None:
        if send is not None and kind in ("focus_lost", "focus_gained"):
            send({"t": "focus", "f": int(kind == "focus_gained")})

    result = await show_page(window, scene, clock, autopilot=rng, code=message.get("code"), participant=state.pid,
                             on_event=on_event)
    if folder is not None:
        import shutil
        shutil.rmtree(folder, ignore_errors=True)
    if result.quit:
        return None
    reply = {"t": "page", "v": message["v"], "o": result.outcome}
    if result.answers is not None:
        reply["a"] = result.answers
        if result.timings is not None:
            reply["tm"] = answer_times.to_wire(result.timings)
    return reply
