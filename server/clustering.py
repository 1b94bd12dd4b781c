"""One worker's part in a study served by many (``--workers N``, ``--redis URL``).

The workers share two things: the study's database (every worker's sink writes the same
SQLite file or PostgreSQL database — checkpoints included, so any worker can resume any
participant) and a Redis (:class:`.cluster.Cluster`) for what they must agree on at once:

- **who serves whom**: a participant is served by one live worker at a time. A hello that
  reaches another worker (connections are spread by the kernel or a proxy) is answered with
  ``move`` to the owner's URL — or, while their room lives, to the room's worker; when the
  owner is dead (killed mid-study), the worker that gets the reconnect claims the
  participant and resumes them from their last checkpoint — a game that was running on the
  dead worker ends ``server_lost``, its committed steps kept and its episodes closed with
  their true counts. Every claim, placement and room carries the worker's *incarnation*
  (one per start of the process), so a worker restarted under the same id takes over its
  predecessor's participants as a dead worker's and never replays their games;
- **tokens first**: a hello is checked against the participant's reconnect token (their
  checkpoint in the shared database) before anything is claimed, so a stranger who knows
  an id cannot take a participant out of their room during a hand-over;
- **balanced conditions**: atomic counters, so N workers still balance exactly;
- **presence and load**: a heartbeat with rooms, participants and tick lateness, which
  ``/status`` on any worker reports for the whole study.

Redis away: running games and pages go on (they are local to their worker); a new
participant is turned away with ``busy`` (the client retries) until it is back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .cluster import Cluster, ClusterUnavailable, Load

if TYPE_CHECKING:
    from .app import IgymServer

log = logging.getLogger("igym.server")
STATUS_EVERY_S = 1.0


class WorkerCluster:
    """This worker's membership: claims, conditions, presence, the cluster's status."""

    def __init__(self, server: IgymServer, cluster: Cluster, worker_id: str, public_url: str) -> None:
        self.server = server
        self.cluster = cluster
        self.worker_id = worker_id
        self.public_url = public_url
        self.study = server.experiment.id
        self.last_status: dict[str, Any] = {}

    async def start(self) -> None:
        """Register (before the first hello is served) and keep the heartbeat and status going."""
        await self.cluster.register(self.worker_id, self.public_url, self.load())
        counts = await self.server.storage.call(self.server.sink.condition_counts, self.study)
        await self.cluster.init_condition_counts(self.study, counts)
        self.server.tasks.spawn(self.cluster.keep_alive(self.load), f"heartbeat of worker {self.worker_id}")
        self.server.tasks.spawn(self._refresh_status(), "cluster status")

    def load(self) -> Load:
        server = self.server
        p99 = server.stats.percentiles().get("p99_ms")
        return Load(rooms=sum(not r.done.done() for r in server.rooms), participants=len(server.participants),
                    p99_ms=p99)

    async def admit(self, participant_id: str) -> str | None:
        """Serve ``participant_id`` here (None), or the URL of the live worker that serves them.
        Raises :class:`ClusterUnavailable` when Redis cannot say."""
        claim = await self.cluster.claim_participant(self.study, participant_id, self.worker_id)
        if claim.ok:
            if claim.took_over:
                log.info("worker %s takes over %s from dead worker %s", self.worker_id, participant_id, claim.previous)
            return None
        return claim.owner_url or None

    async def condition(self, participant_id: str) -> str | None:
        """The participant's condition from the study-wide counters (the same answer every time).
        With Redis away, from the database's counts (balanced, though not atomically across workers)."""
        experiment = self.server.experiment
        try:
            return await self.cluster.assign_condition(self.study, participant_id, list(experiment.conditions or ()))
        except ClusterUnavailable as error:
            log.warning("cluster: condition of %s from the data's counts: %s", participant_id, error)
            counts = await self.server.storage.call(self.server.sink.condition_counts, self.study)
            return experiment.choose_condition(counts)

    async def placement_here(self, participant_id: str) -> dict[str, Any] | None:
        """The room this participant was placed in, if it is on this worker (they were handed
        over to it): room id, their seat, the members in seat order, the room's size."""
        try:
            room_id = await self.cluster.room_of(self.study, participant_id)
            info = await self.cluster.room(room_id) if room_id else None
        except ClusterUnavailable:
            return None
        if info is None or not self.hosts(info.worker_id, info.incarnation) or participant_id not in info.members:
            return None  # not here — or placed on this id's dead predecessor: that game is lost
        return {"room": info.room_id, "seat": info.members.index(participant_id), "members": list(info.members),
                "size": info.size}

    def hosts(self, worker_id: str, incarnation: str) -> bool:
        """Is this registration the one named? A worker restarted under the same id is not the
        one its predecessor's rooms were placed on (the incarnation is the fencing token)."""
        return worker_id == self.worker_id and incarnation == self.cluster.incarnation

    async def reap_lost_room(self, participant_id: str) -> None:
        """The participant's room lived on a worker that died: take it off the books (its
        members are no longer seated; a later game's lobby takes them again). A room whose
        worker is alive is left alone."""
        try:
            room_id = await self.cluster.room_of(self.study, participant_id)
            if room_id is not None and await self.cluster.reap_room(room_id) is not None:
                log.info("worker %s: room %s of a dead worker reaped", self.worker_id, room_id)
        except ClusterUnavailable as error:
            log.warning("cluster: reaping the room of %s failed: %s", participant_id, error)

    async def share_view(self, view: dict[str, Any]) -> list[dict[str, Any]]:
        """Publish this worker's dashboard snapshot and return the other live workers' (the
        dashboard merges them into the whole study's); nothing from the others while Redis is away."""
        try:
            await self.cluster.publish_view(self.study, view)
            return await self.cluster.views(self.study)
        except ClusterUnavailable:
            return []

    def release(self, participant_id: str, completed: bool) -> None:
        """This worker no longer holds ``participant_id`` (their study ended, or they are parked)."""
        async def release() -> None:
            try:
                if completed:
                    await self.cluster.mark_completed(self.study, participant_id)
                await self.cluster.release_participant(self.study, participant_id, self.worker_id)
            except ClusterUnavailable as error:  # their claim lapses with this worker's presence
                log.warning("cluster: releasing %s failed: %s", participant_id, error)
        self.server.tasks.spawn(release(), f"release of {participant_id!r}")

    async def stop(self) -> None:
        try:
            await self.cluster.unregister()
        except ClusterUnavailable:
            pass
        await self.cluster.close()

    async def _refresh_status(self) -> None:
        """``/status`` answers at once from the last second's view of the whole cluster."""
        while True:
            try:
                self.last_status = {"worker": self.worker_id, "redis": "ok",
                                    **await self.cluster.status(self.study)}
            except ClusterUnavailable as error:
                self.last_status = {**self.last_status, "worker": self.worker_id, "redis": f"unavailable: {error}"}
            await asyncio.sleep(STATUS_EVERY_S)
