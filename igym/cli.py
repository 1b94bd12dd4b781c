"""One way every igym command ends: the wrapper around each command's ``main``.

``python -m igym.play``, ``python -m igym.server``, ``python -m igym.data``, ``build_web.sh``
and the console scripts ``igym-play``, ``igym-server``, ``igym-data``, ``igym-web`` are each a
``main(argv)`` that runs the command through :func:`cli_main`, so they all end the same way:

- a user error (:class:`~igym.errors.IgymError` and its subclasses, a bad option included)
  prints ONE line ``igym: …`` on stderr and exits 2 — a researcher sees what to fix;
- Ctrl+C exits 130 without a traceback;
- anything else is a bug in igym: it keeps its traceback (exit 1), so it gets reported and fixed
  instead of hidden behind a friendly line.

Pure Python and light (no pygame, no numpy): the browser's page imports the core too.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from .errors import IgymError, UsageError

Main = Callable[[Sequence[str] | None], int | None]


def one_line(error: BaseException) -> str:
    """The error's message on one line (a message with line breaks is joined, an empty one
    names the error's type), so a log or a terminal shows exactly one line per failure."""
    text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    return text or type(error).__name__


def cli_main(main: Main, argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)`` and turn how it ended into an exit code (see the module's docstring)."""
    try:
        code = main(argv)
    except IgymError as error:
        print(f"igym: {one_line(error)}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(code or 0)


class Parser(argparse.ArgumentParser):
    """argparse whose usage mistakes are a :class:`UsageError` — one line, exit 2, like every other
    igym error — instead of argparse's usage block."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


# ---------------------------------------------------------------------------------------- option types
# argparse turns the ValueError of a type function into "argument --x: invalid … value", so each
# of these raises ArgumentTypeError with a message that says what fits.


def positive_int(text: str) -> int:
    """An option that counts something that must happen at least once (``--max-steps``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number — give 1 or more") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} — give 1 or more")
    return value


def positive_float(text: str) -> float:
    """A rate or a duration that must be above zero (``--fps``, ``--display-fps``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number — give a number above 0") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} — give a number above 0")
    return value


def port_number(text: str) -> int:
    """A TCP port: 0 (any free port) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number — give 0 to 65535") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number — give 0 to 65535 (0: any free port)")
    return value
