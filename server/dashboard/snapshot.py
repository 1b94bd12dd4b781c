"""The dashboard's picture of a study at one moment: one function, plain JSON.

:func:`snapshot` reads the server's live objects — participants and their ``StudyRun``,
lobbies, rooms, the clock's and the storage's counters — and returns a dict made of
str, int, float, bool, None, lists and dicts only, so it can be sent as it is, stored,
or combined: when the server runs as several workers, each publishes its snapshot and
:func:`merge` builds the whole study's from them, in the same shape, for the same page.

Shape (``v`` 1; times are unix seconds, durations seconds, round trips and lateness ms)::

    {"v": 1, "worker": {"id", "started"}, "experiment", "time",
     "plan":         [{"scene", "kind"}],              # every scene, in declaration order
     "funnel":       [{"scene", "kind", "reached", "now"}],  # people who got that far / are there now
     "statuses":     {"started", "completed", "declined", "aborted"},
     "conditions":   {name: participants},
     "codes_issued": int,
     "counts":       {"known", "connected", "uploading", "waiting", "rooms"},
     "participants": {id: {"status", "condition", "scene", "kind", "position", "of", "since",
                           "where", "room", "connected", "away_since", "focus", "focus_since", "code"}},
     "lobbies":      [{"game", "seats", "timeout_s", "waiting": [{"participant", "since", "present"}]}],
     "rooms":        [{"room", "game", "network", "started", "episode", "episodes", "step", "paused"?,
                       "input_delay"?, "stalls"?, "desyncs"?,          # ? = lockstep or authoritative only
                       "members": [{"participant", "seat", "present", "rtt_ms", "focus"}]}],
     "lateness":     {"p50_ms", "p99_ms", "max_ms", "ticks"},   # the rooms' clock, the last second
     "storage":      {"alive", "records_written", "records_per_s", "last_commit", "data_bytes", "data_path"},
     "traffic":      {"bytes_sent", "frames_sent", "inputs_relayed", "rejected"},
     "events":       [{"id", "t", "kind", "participant", "text"}]}   # the last 50, oldest first

``where`` is ``page``, ``lobby``, ``room``, ``done``, ``upload`` (a solo web page that runs
the study itself: the server sees its records, not its scenes) or ``""`` (between scenes).
Participant ids come from clients: whoever shows them must escape them.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any
from collections.abc import Iterable

from .activity import KEPT

if TYPE_CHECKING:
    from ..app import IgymServer
    from ..rooms import GameRoom
    from .activity import Activity
    from .history import History

VERSION = 1
STATUSES = ("started", "completed", "declined", "aborted", "failed")


def scene_order(experiment: Any) -> list[dict[str, str]]:
    """Every scene of the experiment once, in the order the file declares them (a random
    order's scenes in their written order): the rows of the funnel."""
    seen: dict[str, str] = {}
    for scene in experiment.all_scenes():
        seen.setdefault(scene.name, scene.kind)
    return [{"scene": name, "kind": kind} for name, kind in seen.items()]


def snapshot(server: IgymServer, activity: Activity, history: History, *, worker: dict[str, Any],
             clock_offset: float, data_bytes: int | None = None,
             overview: dict[str, Any] | None = None) -> dict[str, Any]:
    """The study as this worker sees it now (see the module's docstring for the shape).

    ``overview`` (the sink's ``study_overview``: the whole study as the data has it) gives the
    counts — statuses, conditions, codes, who reached each scene — so participants the server
    no longer holds in memory (finished, parked, from before a restart) are counted too, and
    its most recent participants fill the table beside the ones in memory.

    ``clock_offset`` turns the server's monotonic times into unix times (``time.time() -
    time.monotonic()``, taken once, so times do not jitter from one snapshot to the next).
    """
    plan = scene_order(server.experiment)
    statuses: Counter[str] = Counter({status: 0 for status in STATUSES})
    conditions: Counter[str] = Counter({name: 0 for name in server.experiment.conditions or {}})
    reached: Counter[str] = Counter()
    now_at: Counter[str] = Counter()
    codes = uploading = 0
    participants: dict[str, dict[str, Any]] = {}
    for participant in list(server.participants.values()):
        row = _participant(participant, activity, clock_offset)
        participants[participant.pid] = row
        run = participant.run
        if participant.uploading:
            uploading += 1
        if run is None:
            continue
        statuses[run.status] += 1
        if run.condition:
            conditions[run.condition] += 1
        if run.completion_code:
            codes += 1
        reached.update({scene.name for scene in run.plan[:run.position + 1]})
        if row["scene"] is not None and run.current is not None and not participant.finished:
            now_at[row["scene"]] += 1
    counted_from = "memory"
    if overview is not None:
        counted_from = "database"
        statuses = Counter({status: 0 for status in STATUSES})
        statuses.update(overview["statuses"])
        conditions = Counter({name: 0 for name in server.experiment.conditions or {}})
        conditions.update(overview["conditions"])
        codes = overview["codes_issued"]
        reached = Counter(overview["reached"])
        for row in overview["recent"]:
            if row["participant"] not in participants:
                participants[row["participant"]] = _remembered(row)
    lobbies = [_lobby(lobby, clock_offset) for lobby in list(server.lobbies.values())]
    rooms = [_room(room, activity, clock_offset) for room in list(server.rooms) if not room.done.done()]
    rooms.sort(key=lambda room: room["room"])
    latest = history.latest or {}
    storage = server.storage
    stats = server.stats
    return {
        "v": VERSION,
        "worker": worker,
        "experiment": server.experiment.id,
        "time": round(time.time(), 3),
        "plan": plan,
        "counted_from": counted_from,
        "funnel": [{**scene, "reached": reached[scene["scene"]], "now": now_at[scene["scene"]]} for scene in plan],
        "statuses": dict(statuses),
        "conditions": dict(conditions),
        "codes_issued": codes,
        "counts": {"known": len(participants), "held": len(server.participants),
                   "connected": sum(r["connected"] for r in participants.values()),
                   "uploading": uploading, "waiting": sum(len(lobby["waiting"]) for lobby in lobbies),
                   "rooms": len(rooms)},
        "participants": participants,
        "lobbies": lobbies,
        "rooms": rooms,
        "lateness": {key: latest.get(key) for key in ("p50_ms", "p99_ms", "max_ms", "ticks")},
        "storage": {"alive": storage.alive, "records_written": storage.records_written,
                    "records_per_s": latest.get("records_per_s"), "last_commit": round(storage.last_commit, 1),
                    "data_bytes": data_bytes, "data_path": _data_path(server.sink)},
        "traffic": {"bytes_sent": stats.bytes_sent, "frames_sent": stats.frames_sent,
                    "inputs_relayed": stats.inputs_relayed, "rejected": stats.rejected},
        "events": activity.events(),
    }


def _participant(participant: Any, activity: Activity, offset: float) -> dict[str, Any]:
    run = participant.run
    visit = run.current if run is not None else None
    scene = kind = None
    if visit is not None:
        scene, kind = visit.name, visit.kind
    elif run is not None and 0 <= run.position < len(run.plan):
        scene, kind = run.plan[run.position].name, run.plan[run.position].kind
    if participant.finished:
        where = "done"
    elif participant.room is not None:
        where = "room"
    elif participant.lobby is not None:
        where = "lobby"
    elif participant.page is not None:
        where = "page"
    elif participant.uploading:
        where = "upload"
    else:
        where = ""
    focus = activity.focus.get(participant.pid)
    return {"status": run.status if run is not None else None,
            "condition": run.condition if run is not None else None,
            "scene": scene, "kind": kind,
            "position": run.position if run is not None else None,
            "of": len(run.plan) if run is not None else None,
            "since": round(visit.started_at, 1) if visit is not None else None,
            "where": where,
            "room": participant.room.number if participant.room is not None else None,
            "connected": participant.present,
            "away_since": None if participant.present else round(offset + participant.gone_since, 1),
            "focus": focus[0] if focus else None,
            "focus_since": focus[1] if focus else None,
            "code": run.completion_code if run is not None else None}


def _remembered(row: dict[str, Any]) -> dict[str, Any]:
    """A participant the server does not hold in memory, as the data remembers them."""
    away = row["status"] == "started"
    return {"status": row["status"], "condition": row["condition"], "scene": row["scene"], "kind": None,
            "position": None, "of": None, "since": None, "where": "away" if away else "done", "room": None,
            "connected": False, "away_since": round(row["parked_at"], 1) if away and row["parked_at"] else None,
            "focus": None, "focus_since": None, "code": row["code"]}


def _lobby(lobby: Any, offset: float) -> dict[str, Any]:
    return {"game": lobby.game.name, "seats": len(lobby.seats), "timeout_s": lobby.game.lobby_timeout_s,
            "waiting": [{"participant": w.participant.pid, "since": round(offset + w.joined, 1), "present": w.present}
                        for w in list(lobby.waiting) if w.result is None or not w.result.done()]}


def _room(room: GameRoom, activity: Activity, offset: float) -> dict[str, Any]:
    status = room.status()
    status.pop("age_s", None)
    status["started"] = round(offset + room.created, 1)
    status["episodes"] = room.game.episodes
    for member in status.get("members", []):
        focus = activity.focus.get(member["participant"])
        member["focus"] = focus[0] if focus else None
    return status


def _data_path(sink: Any) -> str | None:
    path = getattr(sink, "path", None)
    return str(path) if path is not None else None


# --- many workers, one study -----------------------------------------------------------------


def merge(snapshots: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One study's snapshot from its workers' snapshots, in the same shape.

    Counts add up; participants, lobbies (by game), rooms and events are joined (rooms and
    events say which worker they are on); tick lateness is the worst worker's; the data's
    size is the largest reported for a shared database, the sum for one file per worker.
    A participant known to two workers (they reconnected to another one) appears once,
    as the worker that has them connected sees them, but is counted by both until the
    coordination layer hands their run from one worker to the other.
    """
    parts = [s for s in snapshots if s]
    if not parts:
        raise ValueError("merge needs at least one snapshot")
    first = parts[0]
    merged: dict[str, Any] = {"v": VERSION, "worker": {"id": "all", "workers": [p["worker"] for p in parts],
                                                        "started": min(p["worker"]["started"] for p in parts)},
                              "experiment": first["experiment"], "time": max(p["time"] for p in parts),
                              "plan": first["plan"]}
    funnel = {row["scene"]: {**row, "reached": 0, "now": 0} for row in first["funnel"]}
    database = all(p.get("counted_from") == "database" for p in parts) and \
        len({p["storage"]["data_path"] for p in parts}) == 1
    for part in parts:
        for row in part["funnel"]:
            entry = funnel.setdefault(row["scene"], {**row, "reached": 0, "now": 0})
            entry["reached"] = row["reached"] if database else entry["reached"] + row["reached"]
            entry["now"] += row["now"]
    merged["funnel"] = list(funnel.values())
    shared = all(p.get("counted_from") == "database" for p in parts) and \
        len({p["storage"]["data_path"] for p in parts}) == 1
    for key in ("statuses", "conditions", "counts", "traffic"):
        total: Counter[str] = Counter()
        for part in (parts[:1] if shared and key in ("statuses", "conditions") else parts):
            total.update(part[key])
        merged[key] = dict(total)
    merged["codes_issued"] = first["codes_issued"] if shared else sum(p["codes_issued"] for p in parts)
    merged["counted_from"] = "database" if shared else "memory"
    participants: dict[str, dict[str, Any]] = {}
    for part in parts:
        for pid, row in part["participants"].items():
            if pid not in participants or (row["connected"] and not participants[pid]["connected"]):
                participants[pid] = {**row, "worker": part["worker"]["id"]}
    merged["participants"] = participants
    lobbies: dict[str, dict[str, Any]] = {}
    for part in parts:
        for lobby in part["lobbies"]:
            entry = lobbies.setdefault(lobby["game"], {**lobby, "waiting": []})
            entry["waiting"] = sorted(entry["waiting"] + lobby["waiting"], key=lambda w: w["since"])
    merged["lobbies"] = list(lobbies.values())
    merged["rooms"] = [{**room, "worker": part["worker"]["id"]} for part in parts for room in part["rooms"]]
    worst = max(parts, key=lambda p: p["lateness"].get("p99_ms") or -1.0)["lateness"]
    merged["lateness"] = {**worst, "ticks": sum(p["lateness"].get("ticks") or 0 for p in parts)}
    paths = {p["storage"]["data_path"] for p in parts}
    sizes = [p["storage"]["data_bytes"] for p in parts if p["storage"]["data_bytes"] is not None]
    merged["storage"] = {
        "alive": all(p["storage"]["alive"] for p in parts),
        "records_written": sum(p["storage"]["records_written"] for p in parts),
        "records_per_s": round(sum(p["storage"]["records_per_s"] or 0 for p in parts), 1),
        "last_commit": min(p["storage"]["last_commit"] for p in parts),
        "data_bytes": (max(sizes) if len(paths) == 1 else sum(sizes)) if sizes else None,
        "data_path": first["storage"]["data_path"] if len(paths) == 1 else None}
    events = [{**event, "id": f"{part['worker']['id']}/{event['id']}", "worker": part["worker"]["id"]}
              for part in parts for event in part["events"]]
    events.sort(key=lambda event: event["t"])
    merged["events"] = events[-KEPT:]
    return merged
