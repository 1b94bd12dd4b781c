"""One participant's way through the study on the server.

Each participant has a flow task that walks them through the experiment's scenes (pages
on their client, games in rooms) independently of their connection, so a dropped
connection can come back and pick up where it was. The rules of the flow — which scene
comes next, conditions, outcomes — are :class:`igym.study.StudyRun`'s; this module shows
each visit and waits for how it ended. Every visit's records are committed before the
next scene starts (data is sacred), through the storage thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from igym import answer_times, wire
from igym.experiment import Game
from igym.records import EventRecord
from igym.scenes import PAGE_OUTCOMES, page_to_wire
from igym.study import StudyRun

from .cluster_lobby import Moved

if TYPE_CHECKING:
    from .app import IgymServer
    from .participants import Participant

log = logging.getLogger("igym.server")



async def run_flow(server: IgymServer, participant: Participant) -> None:
    """Walk one participant through the study until it ends (then tell their client), or until
    they are away so long that they are parked: their place stays in the data, not in memory."""
    storage = server.storage
    run = await _study_run(server, participant)
    try:
        while (show := run.next_show()) is not None:
            storage.write(run.take_records())
            await _checkpoint(server, participant)
            visit = show.visit
            if show.part == "instructions" and participant.placement is not None:
                run.shown("continued")  # handed over from another worker: read there already
                continue
            if show.is_game:
                outcome = await play(server, participant, visit)
                record(server, participant, "scene_outcome", {"scene": visit.position, "name": visit.name,
                                                              "outcome": outcome})
                run.shown(outcome)
            else:
                page = await _page(server, participant, visit, show.scene)
                if page is None:
                    return  # parked
                run.shown(*page)
            storage.write(run.take_records())
            await storage.commit()  # the next scene starts only with this one on disk
    except Moved:
        return  # their room is on another worker of the study, and their flow goes on there
    except Exception as error:
        log.exception("flow of %s failed", participant.pid)
        run.fail(f"{type(error).__name__}: {error}")
    storage.write(run.take_records())
    participant.finished = True
    server.finished += 1
    await storage.call(server.sink.forget_resume_point, participant.pid)
    ending = run.ending
    assert ending is not None
    await participant.send({"t": "end", "outcome": ending.outcome, "text": ending.text,
                            **({"code": run.completion_code} if run.completion_code else {})})
    if participant.connection is not None:
        await participant.connection.close(wire.CLOSE_ENDED, "study complete")
    else:
        server.forget(participant)


async def _study_run(server: IgymServer, participant: Participant) -> StudyRun:
    """A new run, or the one a parked participant (or a restarted server) resumes. A game that was
    open when its server went away ends as ``server_lost`` (its committed steps kept) and the
    flow goes on with the next scene."""
    storage = server.storage
    snapshot = participant.restored
    if snapshot is None:
        if server.cluster is not None:  # one of many workers: the study-wide counters balance
            condition = await server.cluster.condition(participant.pid)
        else:
            condition = server.experiment.choose_condition(
                await storage.call(server.sink.condition_counts, server.experiment.id))
        run = participant.run = StudyRun(server.experiment, participant.pid, condition=condition,
                                         assigned_by="balanced",
                                         meta={"remote": True, "experiment_file": server.experiment_file,
                                               "experiment_sha256": server.experiment_sha256})
        return run
    run = participant.run = StudyRun.restore(server.experiment, snapshot)
    record(server, participant, "resumed", {"position": run.position, "open_visit": snapshot.get("open_visit")})
    open_visit = snapshot.get("open_visit")
    if open_visit is not None and isinstance(run.plan[run.position + 1], Game) and server.cluster is not None:
        # Handed over by another worker because their room is placed here? Then the game goes on.
        participant.placement = await server.cluster.placement_here(participant.pid)
        if participant.placement is not None:
            return run
    if open_visit is not None and isinstance(run.plan[run.position + 1], Game):
        visit = run.next_visit()
        assert visit is not None
        lost = await storage.call(server.sink.end_open_episodes, visit.visit_id, "server_lost")
        record(server, participant, "scene_outcome", {"scene": visit.position, "name": visit.name,
                                                      "outcome": "server_lost", "episodes": lost})
        run.finish_visit("server_lost")
        storage.write(run.take_records())
        if server.cluster is not None:
            await server.cluster.reap_lost_room(participant.pid)
    return run


async def checkpoint_now(server: IgymServer, participant: Participant) -> None:
    """Keep the participant's place in the shared data now (before handing them to another worker)."""
    await _checkpoint(server, participant)


async def _checkpoint(server: IgymServer, participant: Participant, parked: bool = False) -> None:
    """Keep the participant's place in the data (after every scene change; when parking)."""
    await server.storage.call(server.sink.checkpoint, participant.pid, participant.token_sha256,
                              participant.run.snapshot(), parked)


async def _page(server: IgymServer, participant: Participant, visit: Any,
                scene: Any) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None] | None:
    """Show a page until it is left; None when the participant was parked meanwhile."""
    while True:
        result = await show_page(server, participant, visit, scene)
        if result is not None:
            return result
        await _checkpoint(server, participant, parked=True)
        if not participant.present:
            server.forget(participant)
            server.parked += 1
            return None
        # Back while being parked: they stay, and see the page again.
        await server.storage.call(server.sink.checkpoint, participant.pid, participant.token_sha256,
                                  participant.run.snapshot(), False)


def record(server: IgymServer, participant: Participant, kind: str, data: dict[str, Any]) -> None:
    server.storage.write([EventRecord(participant.pid, time.monotonic_ns(), kind, data or None)])


async def show_page(server: IgymServer, participant: Participant, visit: Any,
                    scene: Any) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None] | None:
    """Show a page on the participant's client and wait for how they left it: the outcome, a
    survey's answers and their times. The page is resent when they reconnect; what they
    answered is checked by :func:`page_done`. None: they have been away ``park_after_s`` (and
    less than ``page_abandon_s``) — park them."""
    message: dict[str, Any] = {"t": "page", "v": visit.visit_id, "i": visit.position, "page": page_to_wire(scene)}
    if scene.kind == "end" and participant.run.completion_code:
        message["code"] = participant.run.completion_code
    image = getattr(scene, "image", None)
    if image:
        path = Path(image) if Path(image).is_absolute() else Path(server.experiment.base_dir or ".") / image
        message["image"] = await asyncio.to_thread(path.read_bytes)
    participant.page = message
    participant.page_scene = scene
    answer: asyncio.Future[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = \
        asyncio.get_running_loop().create_future()
    participant.page_answer = answer
    await participant.send(message)
    abandon, park = server.page_abandon_s, server.park_after_s
    try:
        while True:  # the page stays open across reconnects; a participant gone too long has left
            try:
                return await asyncio.wait_for(asyncio.shield(answer), min(5.0, abandon, park))
            except TimeoutError:
                away = time.monotonic() - participant.gone_since if not participant.present else 0.0
                if away >= abandon:
                    record(server, participant, "page_abandoned", {"visit": visit.visit_id})
                    return "aborted", None, None
                if away >= park:
                    return None
    finally:
        participant.page = None
        participant.page_answer = None


def page_done(participant: Participant, message: dict[str, Any]) -> None:
    """A client left its page: only the page on screen, only the outcomes it has, valid answers,
    and times (``tm``) only for that survey's questions, in a form that can be true. The times
    themselves are the client's report: the server cannot re-check the clock they came from."""
    page, answer = participant.page, participant.page_answer
    if page is None or answer is None or answer.done() or message["v"] != page["v"]:
        raise wire.ProtocolError("page: that page is not the one shown")
    scene = participant.page_scene
    allowed = PAGE_OUTCOMES[scene.kind]
    if message["o"] not in allowed:
        raise wire.ProtocolError(f"page: a {scene.kind} page ends with {' or '.join(allowed)}")
    answers = timings = None
    if scene.kind == "survey":
        answers, problems = scene.check(message.get("a") or {})
        if problems:
            raise wire.ProtocolError(f"page: answers fail the survey's checks ({', '.join(sorted(problems))})")
        if "tm" in message:
            timings = answer_times.from_wire(message["tm"])
            wrong = answer_times.problem(timings, [q.id for q in scene.questions])
            if wrong:
                raise wire.ProtocolError(f"page: {wrong}")
    elif "tm" in message:
        raise wire.ProtocolError(f"page: a {scene.kind} page has no questions to time")
    answer.set_result((message["o"], answers, timings))


async def play(server: IgymServer, participant: Participant, visit: Any) -> str:
    """Play a Game visit: alone in a room of one, or with others from the scene's lobby."""
    game, index = visit.scene, visit.position
    if game.max_rtt_ms is not None:
        rtt = await participant.measure_rtt()
        record(server, participant, "rtt_gate", {"median_ms": rtt, "max_ms": game.max_rtt_ms})
        if rtt is None or rtt > game.max_rtt_ms:
            return "high_latency"
    humans = game.human_agents()
    placement, participant.placement = participant.placement, None
    if placement is not None:  # handed over to this worker, where their room is gathering
        placed = await server.gathering(placement["room"], game, index, placement["members"],
                                        placement["size"]).arrive(participant, placement["seat"], visit.visit_id)
        if isinstance(placed, str):
            return placed
        room = placed
    elif len(humans) <= 1 and not game.observers:
        room = server.new_room(index, game, {humans[0]: participant} if humans else {}, {}, visit.visit_id)
    else:
        placed = await server.lobby(game).wait(participant, index, visit.visit_id)
        if isinstance(placed, str):
            return placed
        room = placed
    member = participant.member if participant.room is room else None
    outcomes = await asyncio.shield(room.done)
    if participant.room is room:
        participant.leave_room()
    return outcomes.get(member.agent, "played") if member is not None else "disconnected"
