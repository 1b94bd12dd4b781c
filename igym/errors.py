"""User-facing errors: one line that names the problem and the fix.

Drivers (``python -m igym.play``, the server) catch :class:`IgymError`, print its message
and exit with code 2 — a researcher with a typo in an experiment file sees what to change,
not a traceback.
"""


class IgymError(Exception):
    """Base of every error meant for the person running igym, not for a debugger."""


class ExperimentError(IgymError):
    """An experiment file or scene is wrong: a missing or invalid field."""


class PolicyError(IgymError):
    """An AI policy cannot be loaded or does not fit its model or seat."""


class EnvError(IgymError):
    """An environment cannot be made or does not behave as the adapter needs."""


class DataError(IgymError):
    """A data file or database cannot be used: not igym's, another schema version, unreachable."""
