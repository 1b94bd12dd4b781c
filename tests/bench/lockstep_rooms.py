"""The server-load game in either network mode, for ``tests/bench/bench_lockstep.py``.

The game is ``tests/experiments/load_slime.py``'s (endless two-player Slime Volleyball at
30 Hz, 1000 episodes) with only ``network`` changed, chosen by ``IGYM_BENCH_NETWORK``
(``authoritative``, the default, or ``lockstep``). The server and every lockstep client
load this file with the same environment, so they build the same game.
"""

import dataclasses
import os

from igym.experiment import Experiment
from tests.experiments.load_slime import experiment as load_slime

NETWORK = os.environ.get("IGYM_BENCH_NETWORK", "authoritative")

authoritative = dataclasses.replace(load_slime.scenes[0], network="authoritative")
lockstep = dataclasses.replace(load_slime.scenes[0], network="lockstep")

experiment = Experiment(id=f"bench_{NETWORK}", scenes=[lockstep if NETWORK == "lockstep" else authoritative])
