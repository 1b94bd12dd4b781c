"""Loading an experiment file (or a Gymnasium id's one-game experiment), with errors a
researcher can act on.

An experiment file is imported as a module of its package when it lives in one (so
``examples/slime_volleyball/human_ai.py`` can import ``.slime`` beside it), else as a
lone module. Whatever goes wrong while it runs becomes one :class:`ExperimentError` line
naming the file, the line and the problem — never a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import ExperimentError, ExperimentWarning, IgymError
from .experiment import Experiment


def _module_name(path: Path) -> tuple[str, Path]:
    """The dotted name of ``path`` inside its package chain, and the folder above it."""
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts), folder


def _line_in(path: Path, error: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename).resolve() == path]
    return f" line {frames[-1].lineno}" if frames else ""


def import_file(path: str | Path) -> ModuleType:
    """Import an experiment file (package-aware), turning any failure into one line."""
    file = Path(path).resolve()
    if not file.is_file():
        raise ExperimentError(f"{path}: no such file — give an experiment file (.py) or a Gymnasium id "
                              f"such as MountainCar-v0")
    name, root = _module_name(file)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        if "." in name:
            module = importlib.import_module(name)
        else:
            spec = importlib.util.spec_from_file_location(name, file)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
    except IgymError as error:
        raise ExperimentError(f"{path}{_line_in(file, error)}: {error}") from None
    except SyntaxError as error:
        raise ExperimentError(f"{path} line {error.lineno}: syntax error: {error.msg}") from None
    except Exception as error:  # noqa: BLE001 — anything the researcher's file raises
        raise ExperimentError(f"{path}{_line_in(file, error)}: {type(error).__name__}: {error}") from None
    return module


def load_target(target: str, keys: Any = None) -> Experiment:
    """What ``python -m igym.play`` and ``python -m igym.server`` take: an experiment file, or a
    Gymnasium id (``MountainCar-v0``) — one person playing the env's own picture with ``keys``
    (a :class:`~igym.controls.KeyMap`; None: the env's built-in map, :mod:`igym.gymenv`)."""
    if target.endswith(".py") or Path(target).exists():
        return load_experiment(target)
    from .gymenv import gym_experiment

    experiment: Experiment = gym_experiment(target, keys)
    return experiment


def load_experiment(path: str | Path) -> Experiment:
    """The ``experiment`` an experiment file defines, with its scenes' base_dir set. A title that
    would show participants an internal name is an :class:`ExperimentWarning` (the study still
    runs: the command-line tools print it as one line)."""
    module = import_file(path)
    experiment = getattr(module, "experiment", None)
    if not isinstance(experiment, Experiment):
        found = type(experiment).__name__ if experiment is not None else "nothing"
        raise ExperimentError(f"{path}: defines {found} named 'experiment' — end the file with "
                              f"experiment = Experiment(id='my_study', scenes=[Game(...)])")
    folder = Path(path).resolve().parent
    experiment.source_file = Path(path).resolve()
    if experiment.base_dir is None:
        experiment.base_dir = folder
    for scene in experiment.games():
        if scene.base_dir is None:
            scene.base_dir = folder
        for kind, names in (("image", scene.images), ("atlas", scene.atlases)):
            for name, asset in names.items():
                if not (Path(scene.base_dir) / asset).is_file():  # an absolute path stays as it is
                    raise ExperimentError(
                        f"{path}: Game {scene.name!r}: {kind} {name!r}: file not found: {Path(scene.base_dir) / asset} "
                        f"— relative paths are relative to the experiment file's folder; a module shared between "
                        f"studies declares them from its own folder, e.g. str(Path(__file__).parent / {asset!r})")
    for scene in experiment.all_scenes():
        image = getattr(scene, "image", None)
        if image and not (experiment.base_dir / image).is_file():
            raise ExperimentError(f"{path}: {scene.kind} scene {scene.name!r}: image {image!r} not found — paths are "
                                  f"relative to the experiment file's folder, {experiment.base_dir}")
    for message in experiment.visible_names():
        warnings.warn(message, ExperimentWarning, stacklevel=2)
    return experiment
