"""The async app loop that drives a Session in a pygame window.

The loop is ``async`` with one ``await`` per frame so the very same code runs under
pygbag in the browser (where the browser owns the frame clock) and natively (where
:class:`Pacer` keeps frame intervals regular: it sleeps until shortly before the deadline,
then spins the last ~2 ms, which gives sub-millisecond frame-interval SD without vsync).

Per frame: window events → session, ``session.tick(now)``, records → sink, draw the latest
frame interpolated towards the next step, wait for the frame's deadline, flip, and tell the
session when the frame was shown (frame intervals are recorded as timing quality).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Protocol, cast
from collections.abc import Callable

from igym.autopilot import Autopilot
from igym.clock import SYSTEM_CLOCK
from igym.controls import all_axes, all_keys
from igym.session import Session

from .assets import Assets
from .draw import FrameRenderer
from .window import IS_BROWSER, InputEvent, Window


class Clock(Protocol):
    def now(self) -> float: ...
    async def wait_frame(self) -> None: ...


class _FrameClock:
    """A display clock is also the core's :class:`igym.clock.Clock`: the session and study run
    see the same "now" that paces the frames; wall time and ids are the machine's."""

    def now(self) -> float:
        raise NotImplementedError

    def monotonic(self) -> float:
        return self.now()

    def wall(self) -> float:
        return time.time()

    def new_id(self) -> str:
        return SYSTEM_CLOCK.new_id()


class Pacer(_FrameClock):
    """Real time at a steady display rate: absolute deadlines, sleep then spin."""

    def __init__(self, fps: float = 60.0, spin_s: float = 0.002) -> None:
        self.period = 1.0 / fps
        self.spin_s = spin_s
        self.deadline = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter()

    async def wait_frame(self) -> None:
        if IS_BROWSER:
            await asyncio.sleep(0)  # the browser's animation frame paces us
            return
        self.deadline += self.period
        now = time.perf_counter()
        if now > self.deadline + self.period:
            self.deadline = now  # fell behind by more than a frame: don't sprint to catch up
            await asyncio.sleep(0)
            return
        remaining = self.deadline - now
        if remaining > self.spin_s:
            await asyncio.sleep(remaining - self.spin_s)
        while time.perf_counter() < self.deadline:
            pass


class VirtualClock(_FrameClock):
    """Headless time: each frame advances exactly one display period, without waiting.

    Headless runs (tests, CI, ``--headless``) are thereby as fast as the machine allows
    and reproducible: timestamps in the records are those of a perfect display.
    """

    def __init__(self, fps: float = 60.0) -> None:
        self.period = 1.0 / fps
        self.t = 0.0

    def now(self) -> float:
        return self.t

    async def wait_frame(self) -> None:
        self.t += self.period
        await asyncio.sleep(0)


@dataclass
class LoopResult:
    """How a scene's loop ended: finished normally, or the window was closed."""

    quit: bool = False


def escape_quits(event: InputEvent) -> bool:
    """The default way out of a game: Esc (lab mode asks for a key combination instead)."""
    return event.key == "escape"


async def run_session(window: Window, session: Session, sink: Any, clock: Clock, *,
                      autopilot: Autopilot | None = None, assets: Assets | None = None,
                      quit_check: Callable[[InputEvent], bool] = escape_quits) -> LoopResult:
    """Drive ``session`` until it finishes or the person closes the window."""
    game = session.game
    renderer = FrameRenderer(window.surface, game.canvas, assets, background=game.background,
                             hud=game.hud is not None)
    result = LoopResult()
    while not session.finished:
        now = clock.now()
        for event in window.poll():
            if event.kind == "down":
                if quit_check(event):
                    result.quit = True
                else:
                    session.press(event.key, now)
            elif event.kind == "up":
                session.release(event.key, now)
            elif event.kind == "axis":
                session.axis(event.axis, event.value, now)
            elif event.kind == "pointer":
                x, y = renderer.to_canvas(*event.pos)
                session.point(x, y, event.buttons, now)
            elif event.kind == "quit":
                result.quit = True
            elif event.kind == "focus":
                if not event.gained:
                    session.release_all(now)
                session.event("focus_gained" if event.gained else "focus_lost", now)
            elif event.kind == "resize":
                renderer.set_target(window.surface)
                session.event("resize", now, {"size": list(window.size)})
        if result.quit:
            session.abort(now)
            break
        if autopilot is not None:
            autopilot.play(session, now)
        session.tick(now)
        sink.write(session.take_records())
        if session.frame is not None:
            renderer.draw(session.frame, session.previous_frame, session.alpha(now))
        # Wait first, then flip: the picture appears on the deadline, not whenever drawing ended.
        await clock.wait_frame()
        window.flip()
        session.note_frame(clock.now())
    sink.write(session.take_records())
    sink.commit()
    return result


def autopilot_for(session: Session, seed: int | None = 0) -> Autopilot:
    """An autopilot pressing the keys (and moving the axes and pointer) of every human seat of ``session``."""
    maps = [seat.keymap for seat in session.inputs.values()]
    axes = {axis.axis: -1.0 if axis.trigger else 0.0 for axis in all_axes(maps)}
    pointed = any(m.pointer is not None for m in maps)
    aims = [seat.aim for seat in session.inputs.values() if callable(getattr(seat, "aim", None))]

    def aim(rng: Any) -> Any:  # the first seat whose pointer knows where to click (the one to move)
        return next((spot for spot in (a(rng) for a in aims) if spot is not None), None)

    pointer = cast("tuple[float, float]", tuple(session.game.canvas)) if pointed else None  # (width, height)
    return Autopilot(all_keys(maps), seed, axes=axes, pointer=pointer,
                     aim=aim if pointed and aims else None)
