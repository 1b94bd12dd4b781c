"""One worker process of a cluster test: registers, waits for its peers, seats its participants.

``python tests/cluster_worker.py REDIS_URL WORKER_ID STUDY SCENE GROUP_SIZE WORKERS P1,P2,…``
joins every listed participant to the scene's lobby at once (each followed by forming
groups until none forms, as a server does on every arrival), waits for each one's room in
their mailbox, and prints one JSON object: the rooms this process formed and the room
message each of its participants received.
"""

import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import redis_service  # noqa: F401, E402 — after sys.path; first: makes igym.server this checkout's

# isort: split
from igym.server.cluster import Cluster  # noqa: E402 — after sys.path names this checkout


async def main(url: str, worker_id: str, study: str, scene: str, size: int, workers: int, people: list[str]) -> dict:
    # Reservations outlive the test's checks even on a slow, busy machine (expiry is tested elsewhere).
    cluster = Cluster(url, worker_ttl_s=3.0, reservation_ttl_s=600.0)
    await cluster.register(worker_id, f"ws://127.0.0.1:1/{worker_id}")
    registered = time.monotonic()
    beat = asyncio.create_task(cluster.keep_alive())
    try:
        deadline = time.monotonic() + 30
        while len(await cluster.workers()) < workers:  # start together: all peers registered
            if time.monotonic() > deadline:
                raise SystemExit(f"{worker_id}: the other workers never registered")
            await asyncio.sleep(0.02)
        formed = []

        async def arrive(pid: str) -> dict:
            await cluster.join(study, scene, pid, worker_id)
            while (placement := await cluster.try_form(study, scene, size)) is not None:
                formed.append({"room": placement.room_id, "worker": placement.worker_id,
                               "incarnation": placement.incarnation,
                               "seats": [[s.participant, s.seat, s.token] for s in placement.seats]})
            message = await cluster.next_message(study, pid, 30)
            if message is None:
                raise SystemExit(f"{worker_id}: no room for {pid}")
            return message

        messages = await asyncio.gather(*(arrive(pid) for pid in people))
        return {"worker": worker_id, "formed": formed, "messages": dict(zip(people, messages)),
                "seconds": round(time.monotonic() - registered, 3)}
    finally:
        beat.cancel()
        await cluster.close()


if __name__ == "__main__":
    url, worker_id, study, scene, size, workers, people = sys.argv[1:8]
    result = asyncio.run(asyncio.wait_for(main(url, worker_id, study, scene, int(size), int(workers),
                                               people.split(",")), 90))
    print(json.dumps(result))
