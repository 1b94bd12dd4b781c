"""One server worker's writes, run in its own process by the concurrency test (test_postgres.py).

Each worker opens its own ``PostgresSink`` on the shared database right after a barrier (so
the workers race to create the schema), writes its participants, episodes, steps and events,
and tries to store the same uploaded batches as every other worker (exactly one may).
"""

from __future__ import annotations

from igym.pg_sink import PostgresSink
from igym.records import EpisodeRecord, EventRecord, ParticipantRecord, StepRecord

AGENTS = ("left", "right")


def participant_ids(worker: int, participants: int) -> list[str]:
    return [f"w{worker}-p{p}" for p in range(participants)]


def condition_of(index: int) -> str:
    return "ab"[index % 2]


def work(url: str, worker: int, participants: int, steps: int, barrier, results) -> None:
    """Write as one server process would; put (worker, batches stored) on ``results``."""
    barrier.wait(60)
    sink = PostgresSink(url, commit_every_s=0.05)  # commits often: the workers' transactions interleave
    stored = 0
    for index, pid in enumerate(participant_ids(worker, participants)):
        sink.write([ParticipantRecord(pid, "race", 1000.0 + index, condition=condition_of(index))])
        episode = EpisodeRecord(f"{pid}-e", pid, "game", 0, index, 1000.0, 1, {a: "human" for a in AGENTS})
        sink.write([episode.copy()])
        for step in range(1, steps + 1):
            sink.write([StepRecord(episode.episode_id, step, step * 1000, AGENTS, {a: step % 3 for a in AGENTS},
                                   ["human", "human"], {a: 0.5 for a in AGENTS}, {a: False for a in AGENTS},
                                   {a: False for a in AGENTS}, ["", ""], [None, None]),
                        EventRecord(pid, step * 1000, "key", {"step": step}, episode.episode_id)])
        episode.ended_at, episode.steps, episode.outcome = 1001.0, steps, "played"
        sink.write([episode.copy()])
        # the same page's batch reaching every worker (a reload that reconnected elsewhere): stored once
        stored += sink.store_batch(f"batch-{index}", "uploader",
                                   [EventRecord("uploader", index, "uploaded", {"by": worker})])
    counts = sink.condition_counts("race")
    sink.close()
    results.put((worker, stored, counts))
