"""User-facing errors: one line that names the problem and the fix.

Every command (``python -m igym.play``, ``igym.server``, ``igym.data``, ``build_web.sh``)
runs through :func:`igym.cli.cli_main`, which prints an :class:`IgymError` as one line
``igym: …`` and exits with code 2 — a researcher with a typo in an experiment file sees what
to change, not a traceback. Anything that is not an IgymError is a bug in igym and keeps its
traceback.
"""

from typing import TextIO


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


class RenderError(ExperimentError, TypeError, ValueError):
    """A render function (or an env's ``render()``) returned something igym cannot draw.

    Also a TypeError and a ValueError, which is what code written against older igym
    versions catches."""


class UsageError(IgymError):
    """A command line igym cannot use: an unknown option, a value out of range."""


class BuildError(IgymError):
    """The web page cannot be built: a missing experiment, pygbag not installed, a bad option."""


class ExperimentWarning(UserWarning):
    """An experiment file works but something in it is likely a mistake (a title that shows
    participants an internal name). The command-line tools print it as one line."""


def warnings_as_lines() -> None:
    """Print :class:`ExperimentWarning` as one line ``igym: warning: …`` on stderr (no file name,
    no source line): the command-line tools call this once, before loading an experiment.
    Other warnings are shown as Python shows them."""
    import sys
    import warnings

    shown = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:  # warnings.showwarning's signature
        if isinstance(category, type) and issubclass(category, ExperimentWarning):
            print(f"igym: warning: {message}", file=file or sys.stderr, flush=True)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
