"""``python -m tests.bench``: run every benchmark and print one table.

Each benchmark module has ``run() -> list[dict]`` rows with at least ``bench``, ``case``,
``value``, ``unit`` and optionally ``baseline``/``ratio``/``target``. Numbers are
measurements, not pass/fail: they go into README's Performance section.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

MODULES = [
    "bench_render", "bench_overcooked", "bench_policy", "bench_session", "bench_wire", "bench_frames", "bench_server",
    "bench_lockstep", "bench_cluster", "bench_bombs",
]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def main(names: list[str]) -> None:
    rows = []
    for name in names or MODULES:
        module = importlib.import_module(f"tests.bench.{name}")
        started = time.perf_counter()
        rows.extend(module.run())
        print(f"# {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    print(f"machine: {machine()}\n")
    print("| bench | case | igym | raw baseline | ratio | target |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        value = f"{row['value']:.4g} {row['unit']}"
        base = f"{row['baseline']:.4g} {row['unit']}" if row.get("baseline") is not None else "—"
        ratio = f"{row['ratio']:.2f}×" if row.get("ratio") is not None else "—"
        print(f"| {row['bench']} | {row['case']} | {value} | {base} | {ratio} | {row.get('target', '')} |")


if __name__ == "__main__":
    main(sys.argv[1:])
