"""The server's own copy of a lockstep game, run only when the clients' word is not enough.

In lockstep every client runs the game and reports what happened (rewards, the episode's
end, state fingerprints). When the reporters agree, the server writes that. When they do
not — two players who disagree, a player who reports nothing — no client can be believed,
so the server plays the episode itself from its seed and the relayed inputs (the canonical
log, which every client also plays) and takes its own result: the rows hold what the game
really did, and a client that drifted gets the referee's state. The referee does no work
while the clients agree; when it does, it runs on a worker thread so no room waits for it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast
from collections.abc import Sequence

from igym.experiment import Game
from igym.lockstep import LoggedInput
from igym.records import EpisodeRecord, StepRecord
from igym.session import Session

# What a report says happened in a step (see claim): the nonzero rewards as (agent, reward) pairs,
# the episode's end as (outcome, cut, who terminated, who was truncated) or None, the fingerprint.
Claim = tuple[tuple[tuple[str, float], ...], tuple[str, bool, tuple[str, ...], tuple[str, ...]] | None, str | None]


def claim(rewards: dict[str, float] | None, end: dict[str, Any] | None, fingerprint: str | None) -> Claim:
    """What a report says happened in a step, in a form that compares equal when two reports agree:
    the nonzero rewards, the episode's end (outcome, cut, who terminated, who was truncated) and the
    state fingerprint (on the steps that carry one)."""
    paid = tuple(sorted((str(a), float(r)) for a, r in (rewards or {}).items() if r))
    ended = None if end is None else (str(end.get("o")), bool(end.get("c", False)), tuple(sorted(end.get("te", ()))),
                                      tuple(sorted(end.get("tr", ()))))
    return paid, ended, fingerprint


def report_claim(report: dict[str, Any]) -> Claim:
    return claim(report.get("r"), report.get("x"), report.get("h"))


@dataclasses.dataclass
class Result:
    """The referee's account of one step: its claim, the row's values and the hook columns."""

    claim: Claim
    rewards: dict[str, float]
    end: dict[str, Any] | None
    fingerprint: str | None
    columns: dict[str, Any] | None


class Referee:
    """Plays a lockstep game's episodes on the server from the seeds and the canonical inputs."""

    def __init__(self, game: Game, seeds: Sequence[int], order: Sequence[str], participant_id: str,
                 fingerprint_every: int) -> None:
        self.order = list(order)
        self.every = fingerprint_every
        self.game = dataclasses.replace(game, seeds=list(seeds), episodes=len(seeds), countdown_s=0.0,
                                        fingerprints=True, render=lambda env: (), hud=None, base_dir=game.base_dir)
        self.session = Session(self.game, participant_id, scene=game.name)
        self.seats = [LoggedInput(game.keymaps[a].default_action) for a in self.order]
        for agent, seat in zip(self.order, self.seats):
            self.session.use_input(agent, seat)
        self.episode = -1
        self.step = 0
        self.results: dict[int, Result] = {}
        self.steps_taken = 0

    def play_to(self, episode: int, step: int, actions: dict[int, list[Any]]) -> Result:
        """The result of ``step`` of ``episode``, playing from the episode's start if need be.

        ``actions`` maps each step still to play to every seat's action (the canonical log).
        """
        if episode != self.episode or step < self.step or (step == self.step and step not in self.results):
            self._restart(episode)
        session = self.session
        while self.step < step:
            for seat, action in zip(self.seats, actions[self.step + 1]):
                seat.action = action
            session.tick(cast(float, session.next_step_at))  # set: _restart jumped into the episode
            self.step += 1
            self.steps_taken += 1
            self.results[self.step] = self._result()
        return self.results[step]

    def state(self) -> dict[str, Any]:
        """The game's state now, as a client's ``state`` answer carries it."""
        get_state = self.session.env.get_state
        if get_state is None:
            raise RuntimeError("the env has no get_state()")
        returns = {str(a): float(v) for a, v in self.session.returns().items()}
        return {"env": get_state(), "returns": returns}

    def _restart(self, episode: int) -> None:
        self.session.jump(episode, 0, None, None, 0.0)
        self.session.take_records()
        self.episode, self.step = episode, 0
        self.results = {}

    def _result(self) -> Result:
        step_record: StepRecord | None = None
        ended: EpisodeRecord | None = None
        for record in self.session.take_records():
            if type(record) is StepRecord:
                step_record = record
            elif type(record) is EpisodeRecord and record.outcome is not None and record.index == self.episode:
                ended = record
        assert step_record is not None, "a referee step made no step record"
        rewards = {str(a): float(r) for a, r in step_record.rewards.items()}
        end = None
        if ended is not None:
            end = {"o": ended.outcome, "c": bool(step_record.cut),
                   "te": [str(a) for a, v in step_record.terminated.items() if v],
                   "tr": [str(a) for a, v in step_record.truncated.items() if v]}
        fingerprint = step_record.fingerprint if self.step % self.every == 0 else None
        return Result(claim(rewards, end, fingerprint), rewards, end, fingerprint, step_record.extra)
