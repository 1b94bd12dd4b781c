"""A scripted Overcooked cook that runs the whole soup cycle, and a random one.

:class:`ScriptedCook` reads the kitchen from CoGrid's state arrays (``env._env_state``),
not from the observation, so it is built with the env: ``ScriptedCook(env, agent)``. Each
step it picks a task from what it holds and what the pots need,

    nothing in hand → fetch a dish if a pot is cooking or ready and nobody else holds one,
                      else fetch an onion if a pot still needs one, else step out of
                      the other cook's way (to the free cell farthest from it);
    onion           → put it in the fullest pot that is not full (or on a free counter);
    dish            → wait by a cooking pot, take the soup when it is ready
                      (or put the dish down if no pot is cooking);
    soup            → serve it at the delivery area,

then walks there by breadth-first search around counters and the other cook, turns to
face the target (a move into a counter only turns) and interacts. When the other cook
blocks its path for a few steps it steps aside at random, so two scripted cooks do not
stand nose to nose for ever. It is the teacher of the shipped ONNX cooks
(train_policy.py) and the "scripted partner" of their evaluation.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from .env import DOWN, INTERACT, LEFT, N_ACTIONS, NOOP, RIGHT, UP

# CoGrid type ids (cogrid.core.objects.registry.get_object_names(scope="overcooked"))
FREE, COUNTER, DELIVERY = 0, 2, 7
ONION, ONION_SOUP, ONION_STACK, PLATE, PLATE_STACK, POT = 8, 9, 11, 12, 13, 14
CAPACITY = 3

MOVES = ((UP, -1, 0), (DOWN, 1, 0), (LEFT, 0, -1), (RIGHT, 0, 1))
DIRECTION_OF_ACTION = {RIGHT: 0, DOWN: 1, LEFT: 2, UP: 3}  # CoGrid agent_dir values


class ScriptedCook:
    """Plans from the env's state; ``act(obs)`` ignores the observation."""

    def __init__(self, env: Any, agent: int, seed: int | None = 0, patience: int = 3) -> None:
        self.env = env
        self.agent = agent
        self.rng = random.Random(seed)
        self.patience = patience
        self.blocked = 0
        self.last_pos: tuple[int, int] | None = None

    def reset(self) -> None:
        self.blocked = 0
        self.last_pos = None

    def act(self, observation: Any = None) -> int:
        state = self.env._env_state
        types = state.object_type_map.tolist()
        items = state.object_state_map.tolist()
        positions = [tuple(p) for p in state.agent_pos.tolist()]
        inventories = [row[0] for row in state.agent_inv.tolist()]
        me = self.agent
        pos = positions[me]
        facing = int(state.agent_dir[me])
        others = [p for i, p in enumerate(positions) if i != me]
        held = inventories[me]
        held_by_others = [v for i, v in enumerate(inventories) if i != me]
        extra = state.extra_state
        pots = [(tuple(p), sum(1 for c in contents if c > 0), timer) for p, contents, timer in zip(
            extra["overcooked.pot_positions"].tolist(), extra["overcooked.pot_contents"].tolist(),
            extra["overcooked.pot_timer"].tolist())]

        targets, wait = self._task(types, items, pots, held, held_by_others)
        if self.last_pos == pos:
            self.blocked += 1
        else:
            self.blocked = 0
        self.last_pos = pos
        if not targets:
            return self._park(types, pos, others)
        action = self._go(types, pos, facing, others, targets, wait)
        if action in (UP, DOWN, LEFT, RIGHT) and self.blocked >= self.patience and self.rng.random() < 0.5:
            action = self.rng.choice((UP, DOWN, LEFT, RIGHT))
        return action

    # --- what to do --------------------------------------------------------------------

    def _task(self, types, items, pots, held, held_by_others) -> tuple[list[tuple[int, int]], bool]:
        """Cells to face (and whether to wait there instead of interacting)."""
        cells = [(r, c) for r, row in enumerate(types) for c in range(len(row))]
        cooking = [p for p, n, t in pots if n == CAPACITY and t > 0]
        ready = [p for p, n, t in pots if n == CAPACITY and t == 0]
        filling = [(n, p) for p, n, t in pots if n < CAPACITY]
        empty_counters = [(r, c) for r, c in cells if types[r][c] == COUNTER and items[r][c] == 0]
        if held == ONION_SOUP:
            return [(r, c) for r, c in cells if types[r][c] == DELIVERY], False
        if held == PLATE:
            if ready:
                return ready, False
            if cooking:
                return cooking, True
            return empty_counters, False
        if held == ONION:
            if filling:
                most = max(n for n, _ in filling)
                return [p for n, p in filling if n == most], False
            return empty_counters, False
        if held not in (-1, None):  # something else (a tomato): put it down
            return empty_counters, False
        dishes_out = sum(1 for v in held_by_others if v in (PLATE, ONION_SOUP))
        onions_out = sum(1 for v in held_by_others if v == ONION)
        if len(cooking) + len(ready) > dishes_out:
            return self._sources(cells, types, items, PLATE, PLATE_STACK), False
        missing = sum(CAPACITY - n for n, _ in filling)
        if missing > onions_out:
            return self._sources(cells, types, items, ONION, ONION_STACK), False
        return [], True

    @staticmethod
    def _sources(cells, types, items, item: int, stack: int) -> list[tuple[int, int]]:
        return [(r, c) for r, c in cells
                if types[r][c] in (stack, item) or (types[r][c] == COUNTER and items[r][c] == item)]

    # --- how to get there --------------------------------------------------------------

    def _go(self, types, pos, facing, others, targets, wait) -> int:
        height, width = len(types), len(types[0])
        target_set = set(targets)
        for action, dr, dc in MOVES:  # already next to a target: face it, then interact
            if (pos[0] + dr, pos[1] + dc) in target_set:
                if facing == DIRECTION_OF_ACTION[action]:
                    return NOOP if wait else INTERACT
                return action
        blocked = set(others)

        def walkable(r: int, c: int) -> bool:
            return 0 <= r < height and 0 <= c < width and types[r][c] == FREE

        for avoid in (blocked, set()):  # around the other cook if possible, else through
            first = self._bfs(pos, walkable, avoid, target_set)
            if first is not None:
                return first
        return NOOP

    def _park(self, types, pos, others) -> int:
        """Nothing to do: step towards the free cell farthest from the other cook (out of its way)."""
        height, width = len(types), len(types[0])
        free = {(r, c) for r in range(height) for c in range(width) if types[r][c] == FREE}
        distance = {p: 0 for p in others}
        queue = deque(others)
        while queue:
            cell = queue.popleft()
            for _, dr, dc in MOVES:
                nxt = (cell[0] + dr, cell[1] + dc)
                if nxt in free and nxt not in distance:
                    distance[nxt] = distance[cell] + 1
                    queue.append(nxt)
        best = max(distance.values(), default=0)
        if distance.get(pos, best) >= best:
            return NOOP
        goals = {p for p, d in distance.items() if d == best}
        for action, dr, dc in MOVES:
            nxt = (pos[0] + dr, pos[1] + dc)
            if nxt in goals:
                return action
        first = self._bfs(pos, lambda r, c: (r, c) in free, set(others), goals, adjacent=False)
        return NOOP if first is None else first

    @staticmethod
    def _bfs(start, walkable, avoid, targets, adjacent: bool = True) -> int | None:
        """The first move of a shortest path to a free cell next to a target (or onto one)."""
        seen = {start: None}
        queue = deque([start])
        while queue:
            cell = queue.popleft()
            if cell != start and (cell in targets if not adjacent else
                                  any((cell[0] + dr, cell[1] + dc) in targets for _, dr, dc in MOVES)):
                while seen[cell][0] != start:
                    cell = seen[cell][0]
                return seen[cell][1]
            for action, dr, dc in MOVES:
                nxt = (cell[0] + dr, cell[1] + dc)
                if nxt not in seen and walkable(*nxt) and nxt not in avoid:
                    seen[nxt] = (cell, action)
                    queue.append(nxt)
        return None


class RandomCook:
    """Uniformly random actions, seeded."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)

    def reset(self) -> None:
        pass

    def act(self, observation: Any = None) -> int:
        return self.rng.randrange(N_ACTIONS)
