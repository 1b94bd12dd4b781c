"""Lockstep play for real: the websockets server on 127.0.0.1 relays inputs between clients
that each run Slime Volleyball; the server's SQLite file must replay to the same states."""

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from igym import data
from igym.lockstep import run_headless
from tests.serving import RawClient, start, stop
from tests.serving import load as load_tuned

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = ROOT / "tests" / "experiments" / "lockstep_slime.py"


def load(monkeypatch, **settings):
    return load_tuned(monkeypatch, EXPERIMENT, "LS", **settings)


def play(experiment, path, players, timeout_s, delay_ms=None):
    """A server (relayed inputs held ``delay_ms``) and headless clients; their results."""
    async def main():
        server, task, url, _ = await start(experiment, path, relay_delay_ms=delay_ms, relay_seed=3)
        try:
            return await asyncio.wait_for(asyncio.gather(
                *(run_headless(url, pid, experiment, autopilot_seed=i + 1) for i, pid in enumerate(players))),
                timeout_s)
        finally:
            await stop(server, task)
    return dict(zip(players, asyncio.run(main())))


def episodes(path):
    db = sqlite3.connect(path)
    return db.execute("SELECT episode_id, episode_index, steps, outcome FROM episodes "
                      "ORDER BY episode_index").fetchall()


def steps(path, episode_id):
    """{agent: [step, ...]} and {step: fingerprint} of one episode as the server stored it."""
    db = sqlite3.connect(path)
    rows = db.execute("SELECT agent, step, fingerprint FROM steps WHERE episode_id=? ORDER BY step",
                      (episode_id,)).fetchall()
    by_agent: dict[str, list[int]] = {}
    fingerprints = {}
    for agent, step, fingerprint in rows:
        by_agent.setdefault(agent, []).append(step)
        if fingerprint:
            fingerprints[step] = fingerprint
    return by_agent, fingerprints


def events(path, kind):
    db = sqlite3.connect(path)
    return [json.loads(d) if d else None for (d,) in db.execute("SELECT data FROM events WHERE kind=?", (kind,))]


def replays(path, episode_id):
    """``python -m igym.data replay --verify``: the server's inputs reproduce its fingerprints."""
    return data.main(["replay", str(path), "--episode", episode_id[:8], "--verify",
                         "--experiment", str(EXPERIMENT)]) == 0


def check_canonical(path, results, episode_count, steps_each):
    """Every step once per agent, every client's fingerprints equal the server's, replays verify."""
    stored = episodes(path)
    assert len(stored) == episode_count
    for episode_id, index, count, outcome in stored:
        assert (count, outcome) == (steps_each, "truncated")
        by_agent, fingerprints = steps(path, episode_id)
        assert by_agent == {"agent_left": list(range(1, count + 1)), "agent_right": list(range(1, count + 1))}
        assert sorted(fingerprints) == list(range(30, count + 1, 30))
        for result in results:
            seen = {step: h for (e, step), h in result["fingerprints"].items() if e == index}
            assert seen == fingerprints, f"episode {index}: a client's states differ from the server's record"
        assert replays(path, episode_id)
        keyed = sqlite3.connect(path).execute(
            "SELECT t_ns, key_t_ns FROM steps WHERE episode_id=? AND source='human'", (episode_id,)).fetchall()
        assert keyed and all(key_t is not None and key_t <= t for t, key_t in keyed)  # reaction times are dated


@pytest.mark.parametrize("observers", [0, 1], ids=["two_players", "two_players_and_an_observer"])
def test_clients_stay_in_sync_for_2000_steps_with_random_delays(tmp_path, monkeypatch, observers):
    experiment = load(monkeypatch, episodes=8, steps=250, fps=240, observers=observers)
    path = tmp_path / "ls.sqlite"
    results = list(play(experiment, path, ["A", "B", "C"][:2 + observers], 150, delay_ms=(0.0, 30.0)).values())
    assert [r["end"]["outcome"] for r in results] == ["played"] * (2 + observers)
    assert all(r["steps"] == 2000 for r in results)
    check_canonical(path, results, 8, 250)
    assert events(path, "desync") == []
    lockstep = events(path, "lockstep")[0]
    assert lockstep["input_delay"] >= 1 and (lockstep["detection"], lockstep["correction"]) == ("fingerprints", "state")
    stalls = events(path, "stall")
    assert stalls  # delays of up to 30 ms against a few steps of input delay: some steps had to wait
    assert len(stalls) == sum(r["stalls"] for r in results)  # every stall a client had is on record
    assert all(s["ms"] > 0 for s in stalls)
    summaries = events(path, "lockstep_episode")  # each client's own account of each episode
    assert len(summaries) == 8 * (2 + observers) and all(e["steps"] == 250 for e in summaries)
    assert sum(e["stalls"] for e in summaries) == len(stalls)


@pytest.mark.parametrize("observers,corrupt,judge", [(0, "B", "server"), (0, "A", "server"), (1, "A", "majority")],
                         ids=["two_players_the_server_decides", "even_against_the_lowest_seat", "majority_wins"])
def test_a_corrupted_client_is_detected_and_corrected_within_k_steps(tmp_path, monkeypatch, observers, corrupt,
                                                                    judge):
    """No seat is trusted: two players who disagree are judged by the server's own replay of the
    step (whichever seat is wrong), three members by their majority."""
    experiment = load(monkeypatch, episodes=1, steps=400, fps=120, observers=observers, corrupt=corrupt,
                      corrupt_step=100, every=30)
    path = tmp_path / "ls.sqlite"
    results = play(experiment, path, ["A", "B", "C"][:2 + observers], 90, delay_ms=(0.0, 10.0))
    desyncs = events(path, "desync")
    assert len(desyncs) == 1, desyncs  # noticed at the first check after it, and corrected before the next
    first = desyncs[0]
    assert first["resolved_by"] == judge
    assert 100 <= first["step"] <= 100 + 30
    good = next(h for pid, h in first["fingerprints"].items() if pid != corrupt)
    assert first["fingerprints"][corrupt] != good
    assert all(h == good for pid, h in first["fingerprints"].items() if pid != corrupt)
    resyncs = events(path, "resync")
    assert resyncs and resyncs[0]["to"] == corrupt and resyncs[0]["from"] != corrupt
    assert results[corrupt]["resyncs"] >= 1
    assert all(r["resyncs"] == 0 for pid, r in results.items() if pid != corrupt)
    # After the correction every client agrees again, and the record is the majority's game.
    (episode_id, _, count, _), = episodes(path)
    _, fingerprints = steps(path, episode_id)
    after = [s for s in fingerprints if s > first["step"] + 30]
    assert after
    for result in results.values():
        for step in after:
            assert result["fingerprints"][(0, step)] == fingerprints[step]
    assert replays(path, episode_id)
    assert all(r["end"]["outcome"] == "played" for r in results.values())


def test_without_get_state_a_desync_is_recorded_but_not_corrected(tmp_path, monkeypatch):
    experiment = load(monkeypatch, episodes=1, steps=200, fps=120, corrupt="B", corrupt_step=50, no_state=1)
    path = tmp_path / "ls.sqlite"
    results = list(play(experiment, path, ["A", "B"], 60).values())
    assert [r["end"]["outcome"] for r in results] == ["played", "played"]
    assert events(path, "lockstep")[0]["correction"] == "none"
    desyncs = events(path, "desync")
    assert desyncs and all(d["correction"] == "none" for d in desyncs)
    assert events(path, "resync") == []
    (episode_id, _, _, _), = episodes(path)
    assert replays(path, episode_id)  # the record holds the lowest seat's (uncorrupted) game


class Desktop:
    """A desktop client process (``python -m igym.play FILE --connect``) with its own cache dir."""

    def __init__(self, url, pid, tmp_path):
        self.env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy",
                    "XDG_CACHE_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
        self.url, self.pid = url, pid
        self.start()

    def start(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "igym.play", str(EXPERIMENT), "--connect", self.url, "--headless", "--autopilot",
             "--participant", self.pid], cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)


def with_a_desktop_client(experiment, path, tmp_path, pid, meanwhile=None):
    """A server, a headless peer "A" and a desktop client ``pid``; ``meanwhile(server, desk)``
    runs while they play. Returns the peer's result, the desktop's exit code and output."""
    async def main():
        server, task, url, _ = await start(experiment, path)
        desk = None
        try:
            peer = asyncio.create_task(run_headless(url, "A", experiment, autopilot_seed=1))
            desk = Desktop(url, pid, tmp_path)
            if meanwhile is not None:
                await meanwhile(server, desk)
            result = await asyncio.wait_for(peer, 90)
            output, _ = await asyncio.get_running_loop().run_in_executor(
                None, lambda: desk.process.communicate(timeout=60))
            return result, desk.process.returncode, output
        finally:
            if desk is not None and desk.process.poll() is None:
                desk.process.kill()
            await stop(server, task)
    return asyncio.run(main())


@pytest.mark.parametrize("no_state", [0, 1], ids=["state_from_a_peer", "replay_from_the_seed"])
def test_a_killed_client_restarts_catches_up_and_the_game_finishes(tmp_path, monkeypatch, no_state):
    experiment = load(monkeypatch, episodes=1, steps=900, fps=60, grace_s=30, no_state=no_state)
    path = tmp_path / "ls.sqlite"

    async def kill_and_restart(server, desk):
        deadline = time.monotonic() + 60
        while server_step(server) < 200:  # the game is well under way
            assert time.monotonic() < deadline and desk.process.poll() is None, "the game did not start"
            await asyncio.sleep(0.05)
        desk.process.send_signal(signal.SIGKILL)
        desk.process.wait(10)
        stalled_at = server_step(server)
        await asyncio.sleep(1.0)
        assert server_step(server) <= stalled_at + 60 // 2  # the peer waits for the missing player
        desk.start()  # the same participant: the token was kept on disk

    result, code, output = with_a_desktop_client(experiment, path, tmp_path, "K", kill_and_restart)
    assert result["end"]["outcome"] == "played"
    assert code == 0 and "outcome: played" in output, output
    (episode_id, _, count, outcome), = episodes(path)
    assert outcome in ("terminated", "truncated") and 200 < count <= 900  # the kill came after step 200
    by_agent, fingerprints = steps(path, episode_id)
    assert by_agent["agent_left"] == by_agent["agent_right"] == list(range(1, count + 1))
    assert events(path, "desync") == []
    for step, h in fingerprints.items():
        assert result["fingerprints"][(0, step)] == h
    assert replays(path, episode_id)
    assert len(events(path, "lockstep_disconnect")) == 1
    if not no_state:
        assert [e["to"] for e in events(path, "resync")] == ["K"]
    desktop = [e for e in events(path, "lockstep_episode") if e["timing"]]
    assert len(desktop) == 1 and desktop[0]["timing"]["frames"] > 60  # the window's frame timing


def test_a_game_that_breaks_on_one_computer_ends_it_for_both_with_the_data_kept(tmp_path, monkeypatch):
    experiment = load(monkeypatch, episodes=1, steps=2000, fps=60, grace_s=1, corrupt="F", corrupt_step=60,
                      **{"break": 1})
    path = tmp_path / "ls.sqlite"
    result, code, output = with_a_desktop_client(experiment, path, tmp_path, "F")
    assert code == 1 and "outcome: error" in output
    assert "The game failed on this computer: RuntimeError: this computer's copy of the game broke" in output
    assert result["end"]["outcome"] == "partner_left"
    (episode_id, _, count, outcome), = episodes(path)
    delay = events(path, "lockstep")[0]["input_delay"]
    assert outcome == "partner_left" and 55 <= count <= 59 + delay  # the steps taken before it broke are kept
    by_agent, _ = steps(path, episode_id)
    assert by_agent["agent_left"] == by_agent["agent_right"] == list(range(1, count + 1))


def server_step(server):
    """The newest step whose inputs are complete in the server's lockstep room (0 before it starts)."""
    return max((room.episodes[room.current].newest for room in server.rooms
                if getattr(room, "network", "") == "lockstep" and room.current in room.episodes), default=0)


@pytest.mark.parametrize("change,message", [
    ({"network": "p2p"}, "network must be one of"),
    ({"seats": {"agent_left": "human", "agent_right": "random"}}, "needs every seat to be 'human'"),
    ({"fill": "random"}, "fill is not available"),
    ({"fingerprints": False}, "remove fingerprints=False"),
    ({"input_delay": 0}, "input_delay must be None"),
    ({"fingerprint_every": 0}, "fingerprint_every must be an int"),
    ({"network": "authoritative", "observers": 1}, "observers need network='lockstep'"),
])
def test_a_wrong_lockstep_scene_names_the_field_and_the_fix(monkeypatch, change, message):
    import dataclasses

    from igym.errors import ExperimentError
    game = load(monkeypatch).scenes[0]
    with pytest.raises(ExperimentError, match=message):
        dataclasses.replace(game, **change)


def test_malformed_lockstep_inputs_close_only_that_connection(tmp_path, monkeypatch):
    experiment = load(monkeypatch, episodes=1, steps=100000, fps=60, grace_s=1, delay=2)  # raw clients answer no pings
    path = tmp_path / "ls.sqlite"

    async def main():
        server, task, url, _ = await start(experiment, path)
        try:
            reasons = []
            for bad in ({"t": "in", "e": 0, "f": 5000, "a": 0},                 # far ahead of the game
                        {"t": "in", "e": 0, "f": 3, "a": 99},                   # not an action of the key map
                        {"t": "in", "e": 0, "n": 40},                           # a report of a step never relayed
                        {"t": "in", "e": 0, "a": 1},                            # an action for no step
                        {"t": "in", "e": 0, "f": 3, "a": 1, "r": {"x": "y"}},   # a reward that is no number
                        {"t": "state", "e": 0, "f": 0, "s": {}},                # a state nobody asked for
                        {"t": "key", "seat": "agent_left", "k": "a", "d": 1}):  # keys are for authoritative games
                honest = await RawClient(url, f"H{len(reasons)}").open()
                rogue = await RawClient(url, f"R{len(reasons)}").open()
                scene = await rogue.wait_for("scene")
                await honest.wait_for("scene")
                if bad.get("f") == 3:
                    bad["f"] = scene["d"][0] + 1
                if bad.get("t") == "key":
                    bad["seat"] = scene["seat"]
                await rogue.connection.send(json_free(bad))
                await rogue.connection.wait_closed()
                reasons.append((rogue.connection.close_code, rogue.connection.close_reason))
                await honest.connection.close()
            return reasons, server.status()
        finally:
            await stop(server, task)

    reasons, status = asyncio.run(main())
    assert [code for code, _ in reasons] == [1008] * 7, reasons
    assert "too far ahead" in reasons[0][1] and "key map" in reasons[1][1] and "never relayed" in reasons[2][1]
    assert "lockstep" in reasons[6][1]
    assert status["messages_rejected"] == 7


def json_free(message):
    from igym import wire
    return wire.pack(message)


def test_a_keystroke_lockstep_game_records_each_press_that_made_a_move(tmp_path):
    """The server writes lockstep rows from the clients' inputs: in a keystroke game each human
    row says which press made its move (``press``) beside the keys held (``keys``)."""
    from igym import Experiment, Game, KeyMap
    from tests.toy_envs import LineRace
    game = Game(name="race", env=lambda: LineRace(goal=1000), render=lambda env: (), canvas=(100, 100),
                seats={"a": "human", "b": "human"}, network="lockstep", fps=60, episodes=1, max_steps=240, seeds=2,
                keys={agent: KeyMap({"right": 1, "left": 2}, mode="keystroke", default_action=0)
                      for agent in ("a", "b")})
    path = tmp_path / "keys.sqlite"
    results = play(Experiment(id="lockstep_keys", scenes=[game]), path, "AB", 120)
    assert [r["end"]["outcome"] for r in results.values()] == ["played", "played"]
    rows = sqlite3.connect(path).execute("SELECT source, keys, press FROM steps").fetchall()
    pressed = [(keys, press) for source, keys, press in rows if source == "human"]
    assert len(rows) == 2 * 240 and pressed
    assert all(press in ("right", "left") and keys.split("+")[-1] == press for keys, press in pressed)
    assert all(press is None for source, _, press in rows if source != "human")
