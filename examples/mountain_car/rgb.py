"""Mountain Car shown as the env's own picture (the other half of shapes.py).

    python -m igym.play examples/mountain_car/rgb.py

The same game and keys as shapes.py (← / →, no key = no push), but the scene has no
render function: igym shows what ``env.render()`` returns for ``render_mode="rgb_array"``
(a 600×400 RGB array, gymnasium's own pygame drawing) as an ``Image``. This path works
for any env with an RGB render, at the cost of sending whole pictures instead of shapes
(see the README's comparison of the two).
"""

import gymnasium

from igym import Experiment, Game, KeyMap


def make_env():
    return gymnasium.make("MountainCar-v0", render_mode="rgb_array")


experiment = Experiment(
    id="mountain_car_rgb",
    scenes=[
        Game(
            name="mountain_car_rgb",
            env=make_env,
            seats={"agent_0": "human"},
            keys=KeyMap({"left": 0, "right": 2}, default_action=1),
            fps=30,
            episodes=3,
            seeds=0,
            canvas=(600, 400),
        )
    ],
)
