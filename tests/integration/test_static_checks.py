"""Static checks, run as tests so CI (which runs only pytest) runs them: ruff over the repository,
mypy --strict over igym, igym.renderers and igym.server (in the installed layout), vulture's
dead-code check, and import-linter's layer contracts (igym.server ─▶ igym.renderers ─▶ the
core). Their configuration is in pyproject.toml; docs/checks.md explains it.

By hand, from the repository root: ``python tests/integration/test_static_checks.py`` runs all four.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path = ROOT) -> tuple[int, str]:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=900)
    return done.returncode, f"$ {' '.join(args)}  (in {cwd})\n{done.stdout}{done.stderr}"


def _script(name: str) -> str:
    """A console script of this Python's environment (where pip put it), else the one on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else name


def stage_installed_layout(dest: Path, root: Path = ROOT) -> Path:
    """Copy the modules of every package in pyproject's [tool.setuptools] ``packages`` to where an
    install puts them (``package-dir``: renderers/ → igym/renderers/, server/ → igym/server/), so
    tools that read packages from disk see igym.renderers and igym.server by their installed names."""
    setuptools = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    package_dir: dict[str, str] = setuptools.get("package-dir", {})
    for package in setuptools["packages"]:
        parts = package.split(".")
        source = root.joinpath(*parts)
        for n in range(len(parts), 0, -1):  # the nearest mapped ancestor decides, as in setuptools
            mapped = package_dir.get(".".join(parts[:n]))
            if mapped is not None:
                source = root.joinpath(mapped, *parts[n:])
                break
        target = dest.joinpath(*parts)
        target.mkdir(parents=True, exist_ok=True)
        for module in source.glob("*.py"):
            shutil.copy2(module, target / module.name)
    return dest


def ruff() -> tuple[int, str]:
    return _run([sys.executable, "-m", "ruff", "check", "."])


def mypy() -> tuple[int, str]:
    """mypy --strict over the core, igym.renderers and igym.server, in the installed layout (strictness and
    overrides: [tool.mypy])."""
    with tempfile.TemporaryDirectory(prefix="igym-types-") as folder:
        staged = stage_installed_layout(Path(folder))
        return _run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir",
                     str(Path(folder) / ".mypy_cache"), "igym"], cwd=staged)


def vulture() -> tuple[int, str]:
    return _run([sys.executable, "-m", "vulture"])  # paths and confidence: [tool.vulture]


def lint_imports() -> tuple[int, str]:
    with tempfile.TemporaryDirectory(prefix="igym-layers-") as folder:
        staged = stage_installed_layout(Path(folder))
        # lint-imports puts its working directory first on sys.path, so it finds the staged igym
        return _run([_script("lint-imports"), str(ROOT / "pyproject.toml"), "--no-cache", "--no-logo"], cwd=staged)


def test_ruff_finds_nothing():
    code, output = ruff()
    assert code == 0, output


@pytest.mark.slow
def test_mypy_strict_finds_nothing_anywhere():
    code, output = mypy()
    assert code == 0, output


def test_vulture_finds_no_dead_code():
    code, output = vulture()
    assert code == 0, output


def test_the_layers_hold():
    code, output = lint_imports()
    assert code == 0, output
    assert "0 broken" in output, output


def test_the_staged_layout_is_the_installed_one(tmp_path):
    """What lint-imports reads is the package as installed: renderers/ and server/ under igym/,
    with every module."""
    staged = stage_installed_layout(tmp_path)
    for source, installed in (("igym", "igym"), ("renderers", "igym/renderers"), ("server", "igym/server")):
        assert ({p.name for p in (ROOT / source).glob("*.py")}
                == {p.name for p in (staged / installed).glob("*.py")}), source


if __name__ == "__main__":
    failed = 0
    for check in (ruff, mypy, vulture, lint_imports):
        code, output = check()
        print(output.rstrip(), end="\n\n")
        failed += code != 0
    sys.exit(1 if failed else 0)
