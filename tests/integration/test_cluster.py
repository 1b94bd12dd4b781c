"""The Redis coordination layer of a study served by many workers, against a real redis-server.

Each test starts its own redis-server (:mod:`tests.redis_service`); "workers" are separate
:class:`~igym.server.cluster.Cluster` objects (each with its own connections) or separate
processes (:mod:`tests.cluster_worker`). What must hold whatever the interleaving: nobody
seated twice, every room on a live worker, counters exact, a reservation claimed once and
only where it belongs, absent people never matched, and Redis going away is one clear
exception — never a hang — after which the same objects work again.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from tests.redis_service import (  # first: igym.server is this checkout's
    ROOT,
    running_redis,
)

# isort: split
from igym.server.cluster import (
    Cluster,
    ClusterUnavailable,
    Joined,
    Load,
    WorkerIdInUse,
    rank,
)

from igym.loader import load_experiment
from igym.study import StudyRun

STUDY, GAME = "study:one", "pair game"  # names with the key separator in them, on purpose
FLOW = ROOT / "tests" / "experiments" / "flow_study.py"


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server of this test's own, on a free port of 127.0.0.1."""
    with running_redis(tmp_path / "redis") as server:
        yield server


def run(main, timeout=90):
    return asyncio.run(asyncio.wait_for(main(), timeout))


async def workers(url, count, **options):
    """``count`` registered workers w1…wN, each its own Cluster (own connections)."""
    clusters = [Cluster(url, **options) for _ in range(count)]
    for index, cluster in enumerate(clusters, 1):
        await cluster.register(f"w{index}", f"ws://127.0.0.1:{9000 + index}")
    return clusters


async def close(*clusters):
    for cluster in clusters:
        await cluster.close()


async def until(predicate, timeout=15.0, every=0.05):
    """Wait until ``await predicate()`` is truthy (bounded); returns it and the seconds it took."""
    start = time.monotonic()
    while True:
        value = await predicate()
        if value:
            return value, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(every)


# --- forming rooms under concurrency -----------------------------------------------------------

def test_200_participants_through_3_workers_form_100_rooms(redis_server, summary):
    async def main():
        clusters = await workers(redis_server.url, 3)
        placements = []

        async def arrive(index):
            pid, cluster = f"p{index:03d}", clusters[index % 3]
            worker = f"w{index % 3 + 1}"
            await cluster.join(STUDY, GAME, pid, worker)
            while (placement := await cluster.try_form(STUDY, GAME, 2)) is not None:
                placements.append(placement)
            return pid, await cluster.next_message(STUDY, pid, 20)

        started = time.monotonic()
        mail = dict(await asyncio.gather(*(arrive(i) for i in range(200))))
        elapsed = time.monotonic() - started
        left = await clusters[0].lobby(STUDY, GAME)
        status = await clusters[1].status(STUDY)
        await close(*clusters)
        return placements, mail, left, status, elapsed

    placements, mail, left, status, elapsed = run(main)
    assert len(placements) == 100
    seated = [pid for p in placements for pid in p.members]
    assert len(seated) == 200 and len(set(seated)) == 200  # everyone seated, nobody twice
    assert len({p.room_id for p in placements}) == 100
    assert all(p.worker_id in {"w1", "w2", "w3"} and p.reason == "matched" and p.empty_seats == 0 for p in placements)
    for placement in placements:  # each member's mailbox has their own seat in that room
        for seat in placement.seats:
            message = mail[seat.participant]
            assert (message["room"], message["seat"], message["token"], message["worker"]) == \
                (placement.room_id, seat.seat, seat.token, placement.worker_id)
            assert message["members"] == placement.members
    assert left == []
    per_worker = Counter(p.worker_id for p in placements)
    assert max(per_worker.values()) - min(per_worker.values()) <= 1  # least loaded: spread evenly
    assert sorted(len(rooms) for rooms in status["rooms_by_worker"].values()) == sorted(per_worker.values())
    summary(f"cluster: 200 joins → 100 rooms through 3 Cluster objects in {elapsed:.2f} s; "
            f"rooms per worker {dict(sorted(per_worker.items()))}")


def test_200_participants_through_3_worker_processes(redis_server, summary):
    people = [f"q{i:03d}" for i in range(200)]
    shares = {f"w{k + 1}": people[k::3] for k in range(3)}
    started = time.monotonic()
    processes = {worker: subprocess.Popen([sys.executable, str(ROOT / "tests" / "cluster_worker.py"),
                                           redis_server.url, worker, STUDY, GAME, "2", "3", ",".join(share)],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
                 for worker, share in shares.items()}
    results = {}
    for worker, process in processes.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        results[worker] = json.loads(out)
    elapsed = time.monotonic() - started
    formed = [room for result in results.values() for room in result["formed"]]
    assert len(formed) == 100 and len({room["room"] for room in formed}) == 100
    seated = [pid for room in formed for pid, _, _ in room["seats"]]
    assert sorted(seated) == people  # everyone, once
    assert {room["worker"] for room in formed} <= set(shares)
    mail = {pid: message for result in results.values() for pid, message in result["messages"].items()}
    rooms = {room["room"]: room for room in formed}
    for pid, message in mail.items():
        room = rooms[message["room"]]
        assert [pid, message["seat"], message["token"]] in room["seats"] and message["worker"] == room["worker"]

    async def claims():  # each reservation: once, on the worker its room lives on
        cluster = Cluster(redis_server.url)
        outcomes = []
        for room in formed:
            for pid, seat, token in room["seats"]:
                elsewhere = next(w for w in shares if w != room["worker"])
                outcomes.append((await cluster.claim_reservation(token, elsewhere, room["incarnation"]),
                                 await cluster.claim_reservation(token, room["worker"], room["incarnation"]),
                                 await cluster.claim_reservation(token, room["worker"], room["incarnation"]), pid,
                                 seat, room))
        await cluster.close()
        return outcomes

    for wrong, right, again, pid, seat, room in run(claims):
        assert wrong is None and again is None
        assert (right.participant, right.seat, right.room_id, right.worker_id) == (pid, seat, room["room"],
                                                                                   room["worker"])
    summary(f"cluster: 200 joins → 100 rooms through 3 worker processes in {elapsed:.2f} s with start-up "
            f"({max(r['seconds'] for r in results.values()):.2f} s from registering to every room delivered); "
            f"rooms per worker {dict(sorted(Counter(r['worker'] for r in formed).items()))}")


def test_leaving_and_forming_at_once_never_both(redis_server):
    """A waiter's own worker times them out (leave) while another worker forms a group: either
    they left or they are seated, never both and never neither."""
    async def main():
        a, b = await workers(redis_server.url, 2)
        outcomes = []
        for round_ in range(60):
            first, second = f"r{round_}a", f"r{round_}b"
            await a.join(STUDY, GAME, first, "w1")
            await b.join(STUDY, GAME, second, "w2")
            left, placed = await asyncio.gather(a.leave(STUDY, GAME, first), b.try_form(STUDY, GAME, 2))
            seated = placed is not None and first in placed.members
            outcomes.append((left, seated))
            await b.leave(STUDY, GAME, second)
        await close(a, b)
        return outcomes

    outcomes = run(main)
    assert all(left != seated for left, seated in outcomes)
    assert {True, False} >= {left for left, _ in outcomes}


def test_forming_runs_once_per_room_id(redis_server):
    """A FORM resent after a broken connection (same room id) returns the room it made the
    first time; it does not take the next waiters into a second room."""
    async def main():
        w1, = await workers(redis_server.url, 1)
        for pid in ("a", "b", "c", "d"):
            await w1.join(STUDY, GAME, pid, "w1")
        first = await w1._form(STUDY, GAME, 2, 2, "", room_id="r1", tokens=["t1", "t2"])
        again = await w1._form(STUDY, GAME, 2, 2, "", room_id="r1", tokens=["t1", "t2"])
        line = [w["participant"] for w in await w1.lobby(STUDY, GAME)]
        await close(w1)
        return first, again, line

    first, again, line = run(main)
    assert first == again and first.members == ["a", "b"] and [s.token for s in first.seats] == ["t1", "t2"]
    assert line == ["c", "d"]


def test_a_quick_redis_restart_costs_no_failed_call(redis_server):
    """Redis restarted between two calls: the pooled connection is dead, the call is retried
    once on a new one (a broken connection, not a timeout) and succeeds."""
    async def main():
        w1, = await workers(redis_server.url, 1)
        await asyncio.gather(*(w1.has_completed(STUDY, str(i)) for i in range(5)))  # a few pooled connections
        redis_server.kill()
        redis_server.start()
        answers = [await w1.heartbeat() for _ in range(3)]
        await close(w1)
        return answers

    assert run(main) == [0, 1, 1]  # the presence is re-created (Redis came back empty), then kept


# --- study-wide state ------------------------------------------------------------------------

def test_balanced_conditions_are_exact_under_concurrency(redis_server):
    conditions = ["red", "green", "blue"]

    async def main():
        clusters = await workers(redis_server.url, 3)
        people = [f"c{i:03d}" for i in range(300)]
        first = await asyncio.gather(*(clusters[i % 3].assign_condition(STUDY, pid, conditions)
                                       for i, pid in enumerate(people)))
        again = await asyncio.gather(*(clusters[(i + 1) % 3].assign_condition(STUDY, pid, conditions)
                                       for i, pid in enumerate(people)))
        counts = await clusters[2].condition_counts(STUDY)
        await close(*clusters)
        return first, again, counts

    first, again, counts = run(main)
    assert Counter(first) == {"red": 100, "green": 100, "blue": 100}
    assert again == first  # idempotent per participant, on any worker
    assert counts == {"red": 100, "green": 100, "blue": 100}


def test_condition_choice_follows_the_experiment_rule(redis_server):
    """Step by step the cluster picks what Experiment.choose_condition would from its counts
    (ties: the first declared); a declined participant stops counting; counters start from
    the study's data without overwriting what Redis already counts."""
    experiment = load_experiment(FLOW)
    declared = list(experiment.conditions)

    async def main():
        cluster, = await workers(redis_server.url, 1)
        await cluster.init_condition_counts("flow", {declared[0]: 2})
        await cluster.init_condition_counts("flow", {declared[0]: 7, declared[1]: 0})  # a later worker: kept
        picks = []
        for i in range(7):
            counts = await cluster.condition_counts("flow")
            expected = experiment.choose_condition(counts)
            picks.append((await cluster.assign_condition("flow", f"d{i}", declared), expected, counts))
            if i == 3:
                assert await cluster.unassign_condition("flow", f"d{i}") == picks[-1][0]
        none = await cluster.assign_condition("flow", "x", [])
        await close(cluster)
        return picks, none

    picks, none = run(main)
    assert picks[0][2] == {declared[0]: 2, declared[1]: 0}
    assert all(got == expected for got, expected, _ in picks)
    assert none is None


def test_completed_tokens_and_snapshots_are_shared(redis_server):
    experiment = load_experiment(FLOW)
    run_ = StudyRun(experiment, "R", condition="fast")
    for _ in range(2):
        visit = run_.next_visit()
        run_.finish_visit("agreed" if visit.kind == "consent" else "continued",
                          {"mood": 3, "colours": ["red"]} if visit.kind == "survey" else None)
    open_visit = run_.next_visit()
    run_.state["note"] = "kept"

    async def main():
        a, b = await workers(redis_server.url, 2)
        assert await a.mark_completed(STUDY, "done") is True
        assert await b.mark_completed(STUDY, "done") is False
        completed = (await b.has_completed(STUDY, "done"), await b.has_completed(STUDY, "R"))
        await a.set_token(STUDY, "R", "sha-old")
        await b.set_token(STUDY, "R", "sha-new")  # a new token replaces the old one
        tokens = (await a.token_participant(STUDY, "sha-new"), await a.token_participant(STUDY, "sha-old"),
                  await a.token_of(STUDY, "R"))
        await a.save_snapshot(STUDY, "R", run_.snapshot())
        snapshot = await b.load_snapshot(STUDY, "R")
        await b.forget_snapshot(STUDY, "R")
        gone = await a.load_snapshot(STUDY, "R")
        await close(a, b)
        return completed, tokens, snapshot, gone

    completed, tokens, snapshot, gone = run(main)
    assert completed == (True, False)
    assert tokens == ("R", None, "sha-new")
    resumed = StudyRun.restore(experiment, snapshot).next_visit()
    assert (resumed.visit_id, resumed.name, resumed.position) == (open_visit.visit_id, open_visit.name,
                                                                  open_visit.position)
    assert gone is None


def test_one_participant_one_worker_at_a_time(redis_server):
    async def main():
        a, b = await workers(redis_server.url, 2)
        first = await a.claim_participant(STUDY, "P", "w1")
        refused = await b.claim_participant(STUDY, "P", "w2")
        again = await a.claim_participant(STUDY, "P", "w1")
        not_mine = await b.release_participant(STUDY, "P", "w2")
        released = await a.release_participant(STUDY, "P", "w1")
        then = await b.claim_participant(STUDY, "P", "w2")
        await close(a, b)
        return first, refused, again, not_mine, released, then

    first, refused, again, not_mine, released, then = run(main)
    assert first.ok and first.previous is None
    assert not refused.ok and (refused.owner, refused.owner_url) == ("w1", "ws://127.0.0.1:9001")
    assert again.ok and again.previous == "w1"
    assert (not_mine, released) == (False, True)
    assert then.ok and then.owner == "w2" and then.previous is None


# --- presence, placement, reservations ---------------------------------------------------------

def test_rooms_go_to_the_least_loaded_live_worker(redis_server):
    async def main():
        w1, w2, w3 = await workers(redis_server.url, 3)
        await w1.heartbeat(Load(rooms=3, participants=6, p99_ms=2.0))
        await w2.heartbeat(Load(rooms=1, participants=5, p99_ms=1.0))
        await w3.heartbeat(Load(rooms=1, participants=2, p99_ms=9.0))
        ranked = [w.worker_id for w in await w1.workers()]
        least = await w2.least_loaded()
        for pid in ("a", "b"):
            await w1.join(STUDY, GAME, pid, "w1")
        placed = await w1.try_form(STUDY, GAME, 2)
        # the room counts on w3 at once (placed 1; it reported 1 room itself: the larger counts)
        after = [(w.worker_id, w.placed_rooms, rank(w)[0]) for w in await w2.workers()]
        twin = Cluster(redis_server.url)
        with pytest.raises(WorkerIdInUse):  # w2 heartbeat a moment ago: alive, whatever the wait
            await twin.register("w2", "ws://elsewhere", wait_s=0.5)
        await twin.close()
        await w3.unregister()
        without_w3 = (await w1.least_loaded()).worker_id
        await close(w1, w2, w3)
        return ranked, least, placed, after, without_w3

    ranked, least, placed, after, without_w3 = run(main)
    assert ranked == ["w3", "w2", "w1"] and least.worker_id == "w3" and least.load.p99_ms == 9.0
    assert placed.worker_id == "w3" and placed.worker_url == "ws://127.0.0.1:9003"
    assert ("w3", 1, 1) in after
    assert without_w3 == "w2"


def test_reservations_are_claimed_once_and_only_on_their_worker(redis_server):
    async def main():
        w1, w2 = await workers(redis_server.url, 2, reservation_ttl_s=1.0)
        await w1.heartbeat(Load(rooms=10))  # rooms go to w2
        for pid in ("a", "b"):
            await w1.join(STUDY, GAME, pid, "w1")
        placement = await w1.try_form(STUDY, GAME, 2)
        token_a, token_b = (seat.token for seat in placement.seats)
        wrong = await w1.claim_reservation(token_a, "w1")
        right = await w2.claim_reservation(token_a, "w2")
        twice = await w2.claim_reservation(token_a, "w2")
        other_worker_twice = await w1.claim_reservation(token_a, "w1")
        bogus = await w2.claim_reservation("not-a-token", "w2")
        owner = await w1.owner_of(STUDY, "a")  # the claim moved the participant to the room's worker
        seated = await w1.room_of(STUDY, "a")
        await asyncio.sleep(1.3)  # past reservation_ttl_s: b never showed up
        expired = await w2.claim_reservation(token_b, "w2")
        mailbox_expired = await w1.next_message(STUDY, "b", 0)
        room = await w2.room(placement.room_id)
        ended_elsewhere = await w1.room_ended(placement.room_id, "w1")
        ended = await w2.room_ended(placement.room_id, "w2")
        after = (await w1.room(placement.room_id), await w1.room_of(STUDY, "a"),
                 [w.placed_rooms for w in await w1.workers() if w.worker_id == "w2"])
        await close(w1, w2)
        return placement, wrong, right, twice, other_worker_twice, bogus, owner, seated, expired, \
            mailbox_expired, room, ended_elsewhere, ended, after

    (placement, wrong, right, twice, other_worker_twice, bogus, owner, seated, expired, mailbox_expired, room,
     ended_elsewhere, ended, after) = run(main)
    assert placement.worker_id == "w2"
    assert wrong is None  # the wrong worker: refused, and still claimable where it belongs
    assert (right.participant, right.seat, right.room_id, right.worker_id, right.scene) == \
        ("a", 0, placement.room_id, "w2", GAME)
    assert twice is None and other_worker_twice is None and bogus is None
    assert owner == "w2" and seated == placement.room_id
    assert expired is None and mailbox_expired is None
    assert room.members == ("a", "b") and room.worker_id == "w2"
    assert ended_elsewhere is None and ended.room_id == placement.room_id
    assert after == (None, None, [0])


def test_a_silent_worker_drops_out_and_its_rooms_are_reported(redis_server, summary):
    async def main():
        w1, w2, w3 = await workers(redis_server.url, 3, worker_ttl_s=1.0)
        beats = [asyncio.create_task(c.keep_alive()) for c in (w1, w2, w3)]
        await w1.heartbeat(Load(rooms=5))
        await w3.heartbeat(Load(rooms=5))  # the next room goes to w2
        for pid in ("a", "b"):
            await w1.join(STUDY, GAME, pid, "w1")
        lost_room = await w1.try_form(STUDY, GAME, 2)
        await w2.claim_participant(STUDY, "served-by-w2", "w2")
        refused = await w1.claim_participant(STUDY, "served-by-w2", "w1")
        await w2.join(STUDY, GAME, "waits-on-w2", "w2")
        beats[1].cancel()  # w2 hangs: no more heartbeats (its connections stay open)
        stopped = time.monotonic()
        _, _ = await until(lambda: _without(w1, "w2"))
        gone_after = time.monotonic() - stopped
        dead = await w1.rooms_of_dead_workers()
        status = await w3.status(STUDY)
        reaped = await asyncio.gather(w1.reap_room(lost_room.room_id), w3.reap_room(lost_room.room_id))
        dead_after = await w1.rooms_of_dead_workers()
        takeover = await w1.claim_participant(STUDY, "served-by-w2", "w1")
        await w1.join(STUDY, GAME, "c", "w1")
        unmatched = await w1.try_form(STUDY, GAME, 2)  # only c is here: w2's waiter is not
        await w3.join(STUDY, GAME, "d", "w3")
        placed = await w3.try_form(STUDY, GAME, 2)
        back = await w2.heartbeat()  # the hung worker wakes up: its presence had lapsed
        for beat in beats:
            beat.cancel()
        await close(w1, w2, w3)
        return lost_room, refused, gone_after, dead, status, reaped, dead_after, takeover, unmatched, placed, back

    (lost_room, refused, gone_after, dead, status, reaped, dead_after, takeover, unmatched, placed,
     back) = run(main)
    assert lost_room.worker_id == "w2" and not refused.ok and refused.owner == "w2"
    assert [room.room_id for room in dead] == [lost_room.room_id] and dead[0].members == ("a", "b")
    assert sorted(w["worker"] for w in status["workers"]) == ["w1", "w3"]
    assert [room["room"] for room in status["rooms_of_dead_workers"]] == [lost_room.room_id]
    assert status["participants_without_live_worker"] == ["served-by-w2"]
    assert [w["present"] for w in status["lobbies"][GAME]] == [False]  # w2's waiter is not here
    assert sorted(r is not None for r in reaped) == [False, True]  # exactly one survivor takes it
    assert dead_after == []
    assert takeover.ok and takeover.previous == "w2"
    assert unmatched is None
    assert placed.members == ["c", "d"] and placed.worker_id in ("w1", "w3")
    assert back == 0
    summary(f"cluster: a worker that stopped heartbeating (ttl 1.0 s) left workers() after {gone_after:.2f} s")


def test_a_worker_restarted_under_its_id_owns_nothing_of_its_predecessor(redis_server):
    """The incarnation is the fencing token: a worker that died and came back under the same id
    registers at once (it waits out the dead one's presence instead of failing), and then holds
    none of the dead registration's participants, rooms or reservations as its own — it takes
    participants over as a dead worker's, cannot end or host the dead one's room, and the room
    is reported as a dead worker's."""
    async def main():
        w1, old = await workers(redis_server.url, 2, worker_ttl_s=1.0)
        beat = asyncio.create_task(w1.keep_alive())
        await old.claim_participant(STUDY, "p", "w2")
        await w1.heartbeat(Load(rooms=5))  # the room goes to w2
        for pid in ("a", "b"):
            await w1.join(STUDY, GAME, pid, "w1")
        placement = await w1.try_form(STUDY, GAME, 2)
        await old.close()  # killed: no unregister, no more heartbeats; its presence lasts 1 s more
        new = Cluster(redis_server.url, worker_ttl_s=1.0)
        started = time.monotonic()
        await new.register("w2", "ws://127.0.0.1:9002")  # the supervisor restarts it at once
        waited = time.monotonic() - started
        claim = await new.claim_participant(STUDY, "p", "w2")
        again = await new.claim_participant(STUDY, "p", "w2")
        stale_reservation = await new.claim_reservation(placement.seats[0].token, "w2")
        ended_by_new = await new.room_ended(placement.room_id, "w2")
        dead = [room.room_id for room in await w1.rooms_of_dead_workers()]
        member_at_w1 = await w1.claim_participant(STUDY, "a", "w1")  # seated in a dead room: w1 may serve
        reaped = await new.reap_room(placement.room_id)
        released_by_old_id = await old_release(redis_server.url, placement)
        beat.cancel()
        await close(w1, new)
        return (placement, waited, claim, again, stale_reservation, ended_by_new, dead, member_at_w1, reaped,
                new.incarnation, released_by_old_id)

    (placement, waited, claim, again, stale_reservation, ended_by_new, dead, member_at_w1, reaped, incarnation,
     released_by_old_id) = run(main)
    assert placement.worker_id == "w2" and placement.incarnation and placement.incarnation != incarnation
    assert 0 < waited < 5
    assert claim.ok and claim.took_over and claim.previous == "w2"  # its own id, but a dead registration's
    assert again.ok and not again.took_over
    assert stale_reservation is None and ended_by_new is None
    assert dead == [placement.room_id]
    assert member_at_w1.ok
    assert reaped is not None and reaped.incarnation == placement.incarnation
    assert released_by_old_id is False


async def old_release(url, placement):
    """A stale registration (another incarnation of w2) cannot let go of a participant the new
    w2 holds, nor end its rooms."""
    stale = Cluster(url)
    stale.worker_id, stale.incarnation = "w2", placement.incarnation
    try:
        return await stale.release_participant(STUDY, "p", "w2")
    finally:
        await stale.close()


def test_a_participant_seated_in_a_live_room_is_sent_to_its_worker(redis_server):
    """A client that reaches a worker other than its room's (the study's URL after a failed
    move, a proxy's choice) is sent on to the room's worker, never claimed where it landed."""
    async def main():
        w1, w2 = await workers(redis_server.url, 2)
        await w1.heartbeat(Load(rooms=5))  # the room goes to w2
        for pid in ("a", "b"):
            await w1.join(STUDY, GAME, pid, "w1")
            await w1.claim_participant(STUDY, pid, "w1")
        placement = await w1.try_form(STUDY, GAME, 2)
        for pid in ("a", "b"):  # w1 hands them over: checkpoint, release, move
            await w1.release_participant(STUDY, pid, "w1")
        wrong = await w1.claim_participant(STUDY, "a", "w1")
        right = await w2.claim_participant(STUDY, "a", "w2")
        back_at_w1 = await w1.claim_participant(STUDY, "a", "w1")  # now its owner is w2
        await w2.room_ended(placement.room_id, "w2")
        after_the_game = await w2.release_participant(STUDY, "b", "w2"), await w1.claim_participant(STUDY, "b", "w1")
        await close(w1, w2)
        return placement, wrong, right, back_at_w1, after_the_game

    placement, wrong, right, back_at_w1, (released, after) = run(main)
    assert placement.worker_id == "w2"
    assert not wrong.ok and (wrong.owner, wrong.owner_url) == ("w2", "ws://127.0.0.1:9002")
    assert right.ok and not right.took_over
    assert not back_at_w1.ok and back_at_w1.owner == "w2"
    assert released is False and after.ok  # the room ended: b may be served anywhere


def test_a_waiter_whose_connection_closed_joins_absent(redis_server):
    """A participant whose connection closed before their flow reached the lobby keeps a place
    for the grace window, but is never counted present nor matched."""
    async def main():
        w1, w2 = await workers(redis_server.url, 2)
        await w1.join(STUDY, GAME, "ghost", "w1", present=False)
        await w2.join(STUDY, GAME, "R", "w2")
        alone = await w2.try_form(STUDY, GAME, 2)
        line = await w2.lobby(STUDY, GAME)
        await w2.join(STUDY, GAME, "R2", "w2")
        pair = await w2.try_form(STUDY, GAME, 2)
        await close(w1, w2)
        return alone, line, pair

    alone, line, pair = run(main)
    assert alone is None
    assert [(w["participant"], w["present"]) for w in line] == [("ghost", False), ("R", True)]
    assert pair.members == ["R", "R2"]


async def _without(cluster, worker_id):
    return worker_id not in {w.worker_id for w in await cluster.workers()}


# --- lobbies: presence and grace -----------------------------------------------------------------

def test_absent_waiters_are_never_matched(redis_server):
    async def main():
        w1, w2 = await workers(redis_server.url, 2)
        await w1.join(STUDY, GAME, "A", "w1")
        marked = await w1.mark_absent(STUDY, GAME, "A")
        await w2.join(STUDY, GAME, "B", "w2")
        while_away = await w2.try_form(STUDY, GAME, 2)
        fill_away = await w1.try_fill(STUDY, GAME, "A", 2)
        line = await w2.lobby(STUDY, GAME)
        await w2.join(STUDY, GAME, "C", "w2")
        pair = await w2.try_form(STUDY, GAME, 2)  # B and C: A is skipped, not matched
        back = await w2.back(STUDY, GAME, "A", "w2")  # A comes back through the other worker
        alone = await w1.try_form(STUDY, GAME, 2)
        await w1.join(STUDY, GAME, "D", "w1")
        kept_place = await w1.try_form(STUDY, GAME, 2)
        not_waiting = (await w1.mark_absent(STUDY, GAME, "nobody"), await w1.back(STUDY, GAME, "nobody", "w1"))
        await close(w1, w2)
        return marked, while_away, fill_away, line, pair, back, alone, kept_place, not_waiting

    marked, while_away, fill_away, line, pair, back, alone, kept_place, not_waiting = run(main)
    assert marked and while_away is None and fill_away is None
    assert [(w["participant"], w["present"], w["worker"]) for w in line] == [("A", False, "w1"), ("B", True, "w2")]
    assert line[0]["away_s"] is not None and line[1]["away_s"] is None
    assert pair.members == ["B", "C"]
    assert back and alone is None
    assert kept_place.members == ["A", "D"]  # A kept their place in line
    assert not_waiting == (False, False)


def test_joining_again_keeps_the_place_and_never_reseats(redis_server):
    """join is idempotent (a worker may re-assert its waiters), and someone already seated
    in a room that has not ended is not put back in line."""
    async def main():
        w1, w2 = await workers(redis_server.url, 2)
        first = await w1.join(STUDY, GAME, "A", "w1")
        await w1.mark_absent(STUDY, GAME, "A")
        await w2.join(STUDY, GAME, "B", "w2")
        again = await w2.join(STUDY, GAME, "A", "w2")  # A reconnected through w2: present, same place
        placement = await w1.try_form(STUDY, GAME, 2)
        seated = await w1.join(STUDY, GAME, "A", "w1")  # a late re-assertion after A was seated
        line = await w1.lobby(STUDY, GAME)
        host = w1 if placement.worker_id == "w1" else w2
        await host.room_ended(placement.room_id, placement.worker_id)
        next_game = await w1.join(STUDY, GAME, "A", "w1")  # the room ended: A may wait for the next game
        await close(w1, w2)
        return first, again, placement, seated, line, next_game

    first, again, placement, seated, line, next_game = run(main)
    assert first.new and first.room is None and first.since > 0
    assert not again.new and again.since == first.since
    assert placement.members == ["A", "B"]
    assert seated == Joined(None, False, placement.room_id) and line == []
    assert next_game.new and next_game.room is None


def test_grace_expiry_removes_only_waiters_away_longer_than_grace(redis_server):
    async def main():
        w1, = await workers(redis_server.url, 1)
        await w1.join(STUDY, GAME, "A", "w1")
        await w1.join(STUDY, GAME, "B", "w1")
        await w1.mark_absent(STUDY, GAME, "A")
        at_once = await w1.expire_absent(STUDY, GAME, 1.0)
        await w1.join(STUDY, GAME, "C", "w1")  # C arrives: with B, a pair (A is away)
        formed = await w1.try_form(STUDY, GAME, 2)
        expired, _ = await until(lambda: w1.expire_absent(STUDY, GAME, 1.0), every=0.1)
        after = await w1.lobby(STUDY, GAME)
        await w1.join(STUDY, GAME, "E", "w1")  # back and away again: the new absence starts a new window
        await w1.mark_absent(STUDY, GAME, "E")
        await asyncio.sleep(0.7)
        await w1.back(STUDY, GAME, "E", "w1")
        await w1.mark_absent(STUDY, GAME, "E")
        fresh = await w1.expire_absent(STUDY, GAME, 0.5)
        await close(w1)
        return at_once, formed, expired, after, fresh

    at_once, formed, expired, after, fresh = run(main)
    assert at_once == []
    assert formed.members == ["B", "C"]
    assert [pid for pid, _ in expired] == ["A"] and expired[0][1] >= 1.0
    assert after == []
    assert fresh == []


def test_fill_forms_a_partial_group_only_for_a_waiter_still_in_line(redis_server):
    async def main():
        w1, w2 = await workers(redis_server.url, 2)
        for pid in ("A", "B"):
            await w1.join(STUDY, "trio", pid, "w1")
        full = await w1.try_form(STUDY, "trio", 3)
        filled = await w2.try_fill(STUDY, "trio", "A", 3)
        again = await w1.try_fill(STUDY, "trio", "A", 3)  # A was just placed
        mail_b = await w1.next_message(STUDY, "B", 5)
        for pid in ("C", "D", "E", "F"):
            await w1.join(STUDY, "trio", pid, "w1")
        await w1.mark_absent(STUDY, "trio", "D")
        late = await w1.try_fill(STUDY, "trio", "F", 3)  # F's timeout: F with the first others here
        await close(w1, w2)
        return full, filled, again, mail_b, late

    full, filled, again, mail_b, late = run(main)
    assert full is None
    assert filled.members == ["A", "B"] and filled.empty_seats == 1 and filled.reason == "filled"
    assert again is None
    assert mail_b["room"] == filled.room_id and mail_b["reason"] == "filled" and mail_b["size"] == 3
    assert late.members == ["C", "E", "F"] and late.reason == "matched"


# --- mailboxes and status --------------------------------------------------------------------------

def test_a_room_reaches_the_worker_holding_the_connection(redis_server, summary):
    async def main():
        w1, w2 = await workers(redis_server.url, 2)
        await w2.join(STUDY, GAME, "far", "w2")
        waiting = asyncio.create_task(w2.next_message(STUDY, "far", 10))
        await asyncio.sleep(0.3)  # w2 is waiting on its mailbox before the room forms
        await w1.join(STUDY, GAME, "near", "w1")
        formed_at = time.monotonic()
        placement = await w1.try_form(STUDY, GAME, 2)
        message = await waiting
        latency = time.monotonic() - formed_at
        nothing = await w2.next_message(STUDY, "far", 0.2)
        await w1.post(STUDY, "far", {"t": "note", "n": 1})
        posted = await w2.next_message(STUDY, "far", 2)
        await close(w1, w2)
        return placement, message, latency, nothing, posted

    placement, message, latency, nothing, posted = run(main)
    assert message["room"] == placement.room_id and message["seat"] == 0 and message["members"] == ["far", "near"]
    assert message["token"] == placement.seats[0].token and message["url"] == placement.worker_url
    assert nothing is None and posted == {"t": "note", "n": 1}
    summary(f"cluster: a formed room reached the other worker's waiting participant in {latency * 1000:.1f} ms")


def test_status_is_the_same_on_every_worker(redis_server):
    async def main():
        w1, w2, w3 = await workers(redis_server.url, 3)
        await w1.heartbeat(Load(rooms=2, participants=4, p99_ms=3.5))
        for pid, cluster, worker in (("a", w1, "w1"), ("b", w2, "w2")):
            await cluster.join(STUDY, GAME, pid, worker)
            await cluster.claim_participant(STUDY, pid, worker)
        placement = await w1.try_form(STUDY, GAME, 2)
        await w3.join(STUDY, GAME, "c", "w3")
        await w3.claim_participant(STUDY, "c", "w3")
        await w2.join(STUDY, "other game", "d", "w2")
        await w2.mark_absent(STUDY, "other game", "d")
        await w1.assign_condition(STUDY, "a", ["x", "y"])
        await w1.mark_completed(STUDY, "z")
        seen = [await cluster.status(STUDY) for cluster in (w1, w2, w3)]
        await close(w1, w2, w3)
        return placement, seen

    placement, seen = run(main)
    timeless = [_timeless(status) for status in seen]
    assert timeless[0] == timeless[1] == timeless[2]
    status = seen[0]
    assert {w["worker"]: (w["rooms"], w["participants"], w["p99_ms"]) for w in status["workers"]}["w1"] == (2, 4, 3.5)
    assert status["participants_by_worker"] == {"w1": ["a"], "w2": ["b"], "w3": ["c"]}
    assert [(w["participant"], w["present"], w["worker"]) for w in status["lobbies"][GAME]] == [("c", True, "w3")]
    assert [(w["participant"], w["present"]) for w in status["lobbies"]["other game"]] == [("d", False)]
    assert status["lobbies"][GAME][0]["since"] > 0
    rooms = status["rooms_by_worker"][placement.worker_id]
    assert [(r["room"], r["members"]) for r in rooms] == [(placement.room_id, ["a", "b"])]
    assert status["conditions"] == {"x": 1} and status["completed"] == 1 and status["rooms_of_dead_workers"] == []


def _timeless(value):
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in ("waited_s", "away_s", "beat_age_s", "up_s")}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


# --- Redis going away ------------------------------------------------------------------------------

ALL_KINDS = ("workers", "join", "form", "condition", "claim", "mail", "status", "heartbeat")


async def _one_call(cluster, kind, n):
    if kind == "workers":
        return await cluster.workers()
    if kind == "join":
        return await cluster.join(STUDY, GAME, f"gap{n}", "w1")
    if kind == "form":
        return await cluster.try_form(STUDY, GAME, 2)
    if kind == "condition":
        return await cluster.assign_condition(STUDY, f"gap{n}", ["x", "y"])
    if kind == "claim":
        return await cluster.claim_reservation("token", "w1")
    if kind == "mail":
        return await cluster.next_message(STUDY, "p", 0.1)
    if kind == "status":
        return await cluster.status(STUDY)
    return await cluster.heartbeat()


def test_redis_down_for_5_s_raises_cluster_unavailable_then_works_again(redis_server, summary):
    async def main():
        cluster, = await workers(redis_server.url, 1, connect_timeout_s=0.5, op_timeout_s=1.0)
        beat = asyncio.create_task(cluster.keep_alive())
        await cluster.join(STUDY, GAME, "before", "w1")
        warm = asyncio.create_task(cluster.next_message(STUDY, "before", 0.5))  # the mail listener is up
        await warm
        redis_server.kill()
        down_at = time.monotonic()
        failures, durations, n = Counter(), [], 0
        while time.monotonic() - down_at < 5.0:
            kind = ALL_KINDS[n % len(ALL_KINDS)]
            start = time.monotonic()
            with pytest.raises(ClusterUnavailable, match="unavailable"):
                await _one_call(cluster, kind, n)
            durations.append(time.monotonic() - start)
            failures[kind] += 1
            n += 1
            await asyncio.sleep(0.05)
        redis_server.start()  # same port, empty (no persistence): the worker registers again
        _, rejoined_after = await until(lambda: _has(cluster, "w1"))
        await cluster.join(STUDY, GAME, "after-1", "w1")
        receiving = asyncio.create_task(cluster.next_message(STUDY, "after-1", 10))
        await cluster.join(STUDY, GAME, "after-2", "w1")
        placement = await cluster.try_form(STUDY, GAME, 2)
        message = await receiving
        beat.cancel()
        await close(cluster)
        return failures, durations, rejoined_after, placement, message

    failures, durations, rejoined_after, placement, message = run(main)
    assert set(failures) == set(ALL_KINDS)  # every kind of call failed the same clear way
    assert placement.members == ["after-1", "after-2"] and message["room"] == placement.room_id
    summary(f"cluster: Redis down 5 s — {sum(failures.values())} calls all raised ClusterUnavailable "
            f"(slowest {max(durations) * 1000:.0f} ms, median {sorted(durations)[len(durations) // 2] * 1000:.0f} ms);"
            f" the worker was registered again {rejoined_after:.2f} s after Redis came back")


def test_a_frozen_redis_is_unavailable_not_a_hang(redis_server, summary):
    """A Redis that accepts nothing and answers nothing (SIGSTOP): each call gives up after
    ``op_timeout_s``; once it runs again, so does the same Cluster."""
    async def main():
        cluster, = await workers(redis_server.url, 1, connect_timeout_s=0.5, op_timeout_s=1.0)
        os.kill(redis_server.process.pid, signal.SIGSTOP)
        durations = []
        try:
            for n, kind in enumerate(("workers", "join", "condition", "mail")):
                start = time.monotonic()
                with pytest.raises(ClusterUnavailable):
                    await _one_call(cluster, kind, n)
                durations.append(time.monotonic() - start)
        finally:
            os.kill(redis_server.process.pid, signal.SIGCONT)
        _, recovered_after = await until(lambda: _has(cluster, "w1", beat=True))
        # replies are not mixed up after the cancelled calls: each answer is its own question's
        await cluster.save_snapshot(STUDY, "s", {"position": 3})
        counts = await cluster.condition_counts(STUDY)  # a call cut off may or may not have been done
        answers = (await cluster.load_snapshot(STUDY, "s"), await cluster.assign_condition(STUDY, "new", ["x", "y"]),
                   (await cluster.join(STUDY, GAME, "gap1", "w1")).since > 0, await cluster.has_completed(STUDY, "s"),
                   [w.worker_id for w in await cluster.workers()])
        await close(cluster)
        return durations, recovered_after, counts, answers

    durations, recovered_after, counts, answers = run(main)
    assert len(durations) == 4
    least = "y" if counts.get("x", 0) > counts.get("y", 0) else "x"
    assert answers == ({"position": 3}, least, True, False, ["w1"])
    summary(f"cluster: frozen Redis — calls gave up after {', '.join(f'{d:.2f}' for d in durations)} s "
            f"(op_timeout_s 1.0); working again {recovered_after:.2f} s after it resumed")


async def _has(cluster, worker_id, beat=False):
    try:
        if beat:
            await cluster.heartbeat()
        return worker_id in {w.worker_id for w in await cluster.workers()}
    except ClusterUnavailable:
        return False
