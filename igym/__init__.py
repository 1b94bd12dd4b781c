"""igym: human-in-the-loop experiments on simulation environments.

The names an experiment file needs, in one place::

    from igym import Experiment, Game, Info, Consent, Survey, End, Likert, KeyMap

Importing this package loads only the pure-Python core (no numpy, pygame or onnxruntime),
so it works in a browser too; the desktop window, the server and the data tools load their
own dependencies when they run.
"""

from .controls import KeyMap
from .experiment import Experiment, Game, RandomOrder, Repeat, Sequence
from .policy import OnnxPolicy
from .questions import Choice, FreeText, Likert, MultiChoice, Number, Slider
from .scenes import Consent, End, Info, Survey

__version__ = "0.2.0"

__all__ = ["Experiment", "Game", "Info", "Consent", "Survey", "End", "RandomOrder", "Repeat", "Sequence",
           "Likert", "Slider", "Choice", "MultiChoice", "FreeText", "Number", "KeyMap", "OnnxPolicy",
           "__version__"]
