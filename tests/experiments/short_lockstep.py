"""The lockstep Slime Volleyball example, cut to one 300-step episode at 60 Hz, for a server
in the tests: the clients run their own copy of the example file, and the server's numbers
(episodes, max_steps, fps, seeds) rule — same experiment id, same scene."""

import dataclasses

from examples.slime_volleyball.lockstep import experiment as full
from igym.experiment import Experiment

experiment = Experiment(id=full.id, scenes=[dataclasses.replace(full.scenes[0], episodes=1, max_steps=300, fps=60)])
