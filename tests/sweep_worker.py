"""Runs ``igym.check.check_target`` over targets in one process (the registry sweep's worker).

    python -m tests.sweep_worker TARGET ...

One line per target on stdout: ``RESULT<TAB>target<TAB>played|refused|crashed<TAB>line``, where
line is the OK line of ``python -m igym.play --check`` or its one-line reason; ``crashed``
(an exception that is not igym's one-line error) fails the sweep test.
"""

from __future__ import annotations

import sys
import time
import traceback


def main(targets: list[str]) -> None:
    from igym.check import check_target
    from igym.errors import IgymError

    for target in targets:
        started = time.monotonic()
        try:
            verdict, line = "played", check_target(target, budget_s=90)
        except IgymError as error:
            verdict, line = "refused", f"igym: {error}"
        except BaseException as error:  # noqa: BLE001 — reported as a crash, with where it came from
            last = traceback.extract_tb(error.__traceback__)[-1]
            verdict, line = "crashed", f"{type(error).__name__}: {error} ({last.filename}:{last.lineno})"
        line = " ".join(line.split())
        print(f"RESULT\t{target}\t{verdict}\t{line}\t{time.monotonic() - started:.1f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
