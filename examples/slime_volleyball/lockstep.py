"""Slime Volleyball for two people over the network, in lockstep.

Each player's computer runs the game from the same seeds; the server only relays the
players' inputs (a few dozen bytes a step instead of frames) and compares the game states
the clients report every 30 steps, correcting a client that drifted. Every client needs
this file:

    python -m igym.server examples/slime_volleyball/lockstep.py --port 8765
    python -m igym.play examples/slime_volleyball/lockstep.py --connect ws://127.0.0.1:8765   # twice

Played locally (``python -m igym.play`` without ``--connect``) it is the one-keyboard game.
"""

import dataclasses

from igym import Experiment

from .human_human import experiment as one_keyboard

game = dataclasses.replace(one_keyboard.scenes[0], name="slime_lockstep", network="lockstep", fingerprint_every=30)

experiment = Experiment(id="slime_lockstep", scenes=[game])
