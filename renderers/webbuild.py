"""``build_web.sh EXPERIMENT``: stage an experiment and build its pygbag web page.

    build_web.sh EXPERIMENT [--out build/web] [--offline] [--server wss://HOST/PATH]
                 [--serve] [--port N] [--no-vendor] [--gui-fonts latin|all]
                 [--staging DIR] [--stage-only]

    python -m igym.renderers.webbuild EXPERIMENT …   (the same, from an installed igym; or igym-web)

Steps: (1) import the experiment in a subprocess to check it and to learn which
pure-Python packages it needs; (2) stage a clean folder — a small ``main.py`` that runs
:mod:`igym.renderers.web_entry` with a generated ``page_config.py`` (the experiment's file,
id and server), the igym core, the renderers as ``igym/renderers``, the experiment's package with its assets,
the folders of the local modules it imports from elsewhere (a draw module shared between
studies, with the assets beside it), the policies it names, and those packages vendored
from this environment; (3) run
``python -m pygbag --build`` on that folder (never on the repo: pygbag packs whatever it
finds and runs ``black`` over it when black is installed); (4) copy ``build/web`` to
``--out`` and print the sizes. ``--serve`` then serves ``--out`` on 127.0.0.1.

The core, the renderers and the page template are found where this file lies: in a
checkout (``renderers/`` beside ``igym/``, which is how ``build_web.sh`` runs it) or in an
installed igym (``igym/renderers/``); a build that cannot find the core stops with a
:class:`~igym.errors.BuildError` rather than stage a page without it.

This file is a build tool: it is not staged into the page. Mistakes end with one line
and exit code 2 (:func:`igym.cli.cli_main`).
"""

from __future__ import annotations

import argparse
import functools
import html
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Sequence

HERE = Path(__file__).resolve().parent
if not __package__ and (HERE.parent / "igym" / "__init__.py").is_file():
    # build_web.sh runs this file from a checkout (python -P: nothing of the checkout is on the
    # path): the core it stages, and the one it reports errors with, is this checkout's.
    sys.path.insert(0, str(HERE.parent))

from igym.cli import Parser, cli_main, port_number  # noqa: E402 — after the checkout's core is on the path
from igym.errors import BuildError  # noqa: E402

CDN = "https://pygame-web.github.io/cdn/0.9.3/"
MARKER = ".igym-staging"  # pygbag skips dot files, so the marker never reaches the apk

# Compiled packages that are not vendored: numpy is declared in main.py (PEP 723) and
# installed by the runtime, pygame is pygbag's own; without onnxruntime, OnnxPolicy runs the
# model with igym.onnxlite (pygbag's Python cannot wait for onnxruntime-web's promises).
NATIVE = {"numpy", "pygame", "onnxruntime"}
SKIP_DIRS = {"tests", "test", "__pycache__", ".pytest_cache", "node_modules", ".git", ".mypy_cache",
             ".ruff_cache", "build", "dist", "igym-data", "__pyinstaller"}
SKIP_SUFFIXES = {".pyc", ".pyo", ".so", ".pyd", ".dll", ".dylib", ".sqlite", ".sqlite-journal", ".sqlite-wal",
                 ".pyi", ".egg-info"}
# pygame_gui's fonts for other scripts (Japanese, Korean, Chinese ~39 MB; Arabic, Hebrew, Georgian) are
# only loaded for those locales.
GUI_CJK_FONTS = ("NotoSansJP", "NotoSansKR", "NotoSansSC", "NotoSansArabic", "NotoSansHebrew", "NotoSansGeorgian")


# The page's core must have these (a folder without them is not igym's core).
CORE_MODULES = ("__init__.py", "cli.py", "errors.py", "experiment.py", "loader.py", "session.py", "sqlite_sink.py")
RENDERER_MODULES = ("__init__.py", "app.py", "study.py", "window.py", "web_entry.py")
WEB_FILES = ("index.tmpl", "favicon.png")


@dataclass(frozen=True)
class Sources:
    """Where the page's igym comes from: the core (``igym/``), the renderers (staged as
    ``igym/renderers``) with the page template and icon in ``web/``, and the checkout's root
    (None for an installed igym)."""

    core: Path
    renderers: Path
    checkout: Path | None

    @property
    def web(self) -> Path:
        return self.renderers / "web"


def find_sources(here: Path = HERE) -> Sources:
    """The core and the renderers beside this file — a checkout (``renderers/`` next to ``igym/``)
    or an installed igym (this file in ``igym/renderers/``) — else those of the imported ``igym``.
    Raises BuildError when a part is missing, instead of staging a page without its core."""
    if (here.parent / "igym" / "__init__.py").is_file():  # a checkout
        found = Sources(here.parent / "igym", here, here.parent)
    elif here.parent.name == "igym" and (here.parent / "__init__.py").is_file():  # installed: igym/renderers/
        found = Sources(here.parent, here, None)
    else:  # this file was copied elsewhere: the installed package's resources
        import importlib.resources
        try:
            found = Sources(Path(str(importlib.resources.files("igym"))),
                            Path(str(importlib.resources.files("igym.renderers"))), None)
        except (ImportError, TypeError) as error:
            raise BuildError(f"cannot find igym's core beside {here} nor installed ({error}) — run build_web.sh "
                             f"from a checkout, or pip install igym") from None
    for folder, names, what in ((found.core, CORE_MODULES, "igym's core"),
                                (found.renderers, RENDERER_MODULES, "igym's renderers"),
                                (found.web, WEB_FILES, "the page template")):
        missing = [name for name in names if not (folder / name).is_file()]
        if missing:
            raise BuildError(f"{what} is incomplete at {folder} (no {', '.join(missing)}) — reinstall igym "
                             f"(pip install --force-reinstall igym) or build from a checkout")
    return found


# ---------------------------------------------------------------------------------------------- discovery

PROBE = r"""
import json, os, site, sys, sysconfig
before = set(sys.modules)
root, experiment_file, renderers = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, root)
out = {}
try:
    import igym
    if renderers:  # a checkout: its renderers/ is igym.renderers, as staged (whatever else is installed)
        import importlib.util
        spec = importlib.util.spec_from_file_location("igym.renderers", os.path.join(renderers, "__init__.py"),
                                                      submodule_search_locations=[renderers])
        module = importlib.util.module_from_spec(spec)
        sys.modules["igym.renderers"] = igym.renderers = module
        spec.loader.exec_module(module)
    from igym.errors import IgymError
    from igym.loader import load_experiment
    import igym.sqlite_sink, igym.scenes, igym.renderers.app, igym.renderers.pages, igym.renderers.study
    import igym.renderers.window, igym.renderers.web_entry  # the page's program
    experiment = load_experiment(experiment_file)
except Exception as error:
    out["error"] = str(error) if type(error).__name__ == "ExperimentError" else f"{type(error).__name__}: {error}"
    print("IGYM-PROBE " + json.dumps(out))
    sys.exit(0)
out["id"] = experiment.id
onnx = []
for game in experiment.games():
    for seat in game.seats.values():
        path = seat if isinstance(seat, str) else getattr(seat, "path", None)
        if isinstance(path, (str, os.PathLike)) and str(path).endswith(".onnx"):
            onnx.append(os.path.abspath(str(path)))
    try:  # an env may import what it needs only when it is built
        env = game.env() if callable(game.env) else game.env
        if hasattr(env, "reset"):
            env.reset(seed=0)
        if game.render is not None:
            game.render(env)
    except Exception as error:  # noqa: BLE001
        out.setdefault("warnings", []).append(f"building {game.name}'s env: {type(error).__name__}: {error}")
out["onnx"] = onnx
places = {os.path.realpath(p) for p in site.getsitepackages() + [site.getusersitepackages(),
          sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]}
stdlib = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")}
import importlib.metadata
# Top-level names of installed distributions are packages wherever their folder is (a .pth can
# add site folders that site.getsitepackages() does not list): never the study's own modules.
installed = set(importlib.metadata.packages_distributions())
local = []
for name in sorted(set(sys.modules) - before):
    file = getattr(sys.modules.get(name), "__file__", None)
    if not file or name.split(".")[0] == "igym" or name.split(".")[0] in installed:
        continue
    real = os.path.realpath(file)
    if not any(real.startswith(p + os.sep) for p in places | stdlib) and os.path.isfile(real):
        local.append(real)
out["local"] = local
found = {}
for name in sorted(set(sys.modules) - before):
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    if not file:
        continue
    real = os.path.realpath(file)
    place = next((p for p in places if real.startswith(p + os.sep)), None)
    if place is None:
        continue
    top = name.split(".")[0]
    if top in found or top.startswith("__editable__") or top in ("igym", "examples", "_distutils_hack"):
        continue
    first = os.path.relpath(real, place).split(os.sep)[0]
    found[top] = os.path.join(place, first)
out["packages"] = found
out["numpy"] = "numpy" in sys.modules
print("IGYM-PROBE " + json.dumps(out))
"""


def probe(experiment: Path, sources: Sources) -> dict[str, Any]:
    """Import the experiment in a clean subprocess: its id, ONNX seats and site-packages imports.

    It runs with the staged core: a checkout's (its root first on the path, from where its
    experiments import ``examples.…``), or the installed one (from the current folder, as
    ``python -m igym.play`` would)."""
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", PYTHONDONTWRITEBYTECODE="1",
               PYGAME_HIDE_SUPPORT_PROMPT="1")
    root = sources.checkout or Path.cwd()
    renderers = str(sources.renderers) if sources.checkout else ""
    done = subprocess.run([sys.executable, "-c", PROBE, str(root), str(experiment), renderers], capture_output=True,
                          text=True, env=env, cwd=str(root), timeout=300)
    for line in done.stdout.splitlines():
        if line.startswith("IGYM-PROBE "):
            result: dict[str, Any] = json.loads(line[len("IGYM-PROBE "):])
            if "error" in result:
                raise BuildError(result["error"])
            return result
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    raise BuildError(f"{experiment}: importing it failed ({tail})")


# ------------------------------------------------------------------------------------------------ staging


def _skip(path: Path) -> bool:
    return path.name in SKIP_DIRS or path.suffix in SKIP_SUFFIXES or path.name.startswith(".")


def copy_tree(src: Path, dst: Path, *, skip_names: tuple[str, ...] = (), skip_dirs: set[str] = SKIP_DIRS) -> int:
    """Copy ``src`` to ``dst`` without tests, caches, compiled files and data files; returns bytes copied."""
    total = 0
    for folder, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs
                         if d not in skip_dirs and not d.startswith(".") and not d.endswith(".egg-info"))
        here = Path(folder)
        target = dst / here.relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        for name in sorted(files):
            file = here / name
            if _skip(file) or any(name.startswith(prefix) for prefix in skip_names):
                continue
            shutil.copy2(file, target / name)
            total += file.stat().st_size
    return total


def package_chain(experiment: Path) -> tuple[Path, list[Path]]:
    """(folder above the package chain, package folders from the outermost in) — as igym.loader does."""
    chain: list[Path] = []
    folder = experiment.parent
    while (folder / "__init__.py").exists():
        chain.insert(0, folder)
        folder = folder.parent
    return folder, chain


def referenced_policies(experiment: Path, chain: list[Path], seats: list[str]) -> list[Path]:
    """policies/*.onnx named by the experiment's folder's Python files or used as seats."""
    policies = page_root(experiment) / "policies"
    if not policies.is_dir():
        return []
    available = {p.name: p for p in policies.glob("*.onnx")}
    folder = chain[-1] if chain else experiment.parent
    texts = [p.read_text(errors="replace") for p in folder.rglob("*.py")
             if not any(part in SKIP_DIRS for part in p.parts)]
    names = {m for text in texts for m in re.findall(r"[\w.\-]+\.onnx", text)}
    names |= {Path(s).name for s in seats}
    chosen = [available[n] for n in sorted(names) if n in available]
    if not chosen and any("policies" in text for text in texts):
        chosen = sorted(available.values())  # named some other way: take them all
    return chosen


def page_root(experiment: Path) -> Path:
    """The folder that becomes the page's root: the one above the experiment's package chain (for
    ``examples/slime_volleyball/human_ai.py`` in a checkout, the checkout), or above a lone file's folder."""
    top, chain = package_chain(experiment)
    return top if chain else experiment.parent.parent


def page_main(experiment_id: str, numpy: bool) -> str:
    """The staged ``main.py``: a few fixed lines that run :mod:`igym.renderers.web_entry` with the
    staged ``page_config``. Only the PEP 723 block differs (pygbag installs numpy when it is declared
    there and imported at the top of main.py)."""
    pep723 = '# /// script\n# dependencies = ["numpy"]\n# ///\n' if numpy else ""
    numpy_import = "import numpy  # noqa: F401 — declared above for pygbag\n" if numpy else ""
    return (f'{pep723}"""The web page of the igym experiment {experiment_id} — staged by build_web.sh.\n\n'
            f"The program is igym/renderers/web_entry.py; what this page runs is in page_config.py.\n"
            f'"""\n\n'
            f"import asyncio\n"
            f"import os\n"
            f"import sys\n"
            f"{numpy_import}\n"
            f"# The staged files: the apk's assets/ folder in the browser, this folder natively.\n"
            f'HERE = os.path.dirname(os.path.abspath(globals().get("__file__")\n'
            f'                                         or os.path.join(os.getcwd(), "main.py")))\n'
            f"if HERE not in sys.path:\n"
            f"    sys.path.insert(0, HERE)\n\n"
            f"import page_config  # noqa: E402\n"
            f"from igym.renderers.web_entry import main  # noqa: E402\n\n"
            f'if __name__ == "__main__":\n'
            f"    code = asyncio.run(main(config=page_config))\n"
            f'    if sys.platform != "emscripten" and code:\n'
            f"        sys.exit(code)\n")


def page_config(experiment_rel: str, experiment_id: str, server: str | None) -> str:
    """The staged ``page_config.py``: the page's settings as plain constants (the only generated data)."""
    return (f'"""Settings of this page — written by build_web.sh; read by igym.renderers.web_entry."""\n\n'
            f"EXPERIMENT_FILE = {experiment_rel!r}  # relative to this folder\n"
            f"EXPERIMENT_ID = {experiment_id!r}\n"
            f"SERVER_URL = {server!r}  # None: records stay in the browser and are downloaded at the end\n")


def _holds(folder: Path, protected: Sequence[Path]) -> bool:
    """Whether ``folder`` is or holds one of ``protected`` (the checkout, the experiment's files)."""
    return any(folder == p or p.is_relative_to(folder) for p in protected)


def prepare_staging(path: Path | None, protected: Sequence[Path] = ()) -> Path:
    if path is None:
        staging = Path(tempfile.mkdtemp(prefix="igym-web-"))
    else:
        staging = path.resolve()
        if _holds(staging, protected):
            raise BuildError(f"--staging {path}: that holds the experiment or igym's files — give a folder of "
                             f"its own")
        if staging.exists() and any(staging.iterdir()):
            if not (staging / MARKER).exists():
                raise BuildError(f"--staging {path}: not empty and not made by build_web.sh — give a new folder")
            shutil.rmtree(staging)
        staging.mkdir(parents=True, exist_ok=True)
    (staging / MARKER).write_text("made by build_web.sh\n")
    return staging


def stage(experiment: Path, staging: Path, info: dict[str, Any], sources: Sources, *, server: str | None,
          vendor: bool, gui_fonts: str) -> dict[str, Any]:
    """Fill ``staging``; returns what went in (sizes in bytes)."""
    report: dict[str, Any] = {"vendored": {}, "vendored_paths": {}, "skipped": {}, "policies": {}}
    # igym core: igym/*.py, and the renderers as igym.renderers (the installed layout).
    (staging / "igym").mkdir()
    for file in sorted(sources.core.glob("*.py")):
        shutil.copy2(file, staging / "igym" / file.name)
    copy_tree(sources.renderers, staging / "igym" / "renderers", skip_dirs=SKIP_DIRS | {"web"},
              skip_names=("webbuild.py", "make_fonts.py"))  # the fonts are staged; their maker is not
    # The experiment's package with its assets, and each parent package's __init__.py.
    top, chain = package_chain(experiment)
    if chain:
        for outer in chain[:-1]:
            target = staging / outer.relative_to(top)
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(outer / "__init__.py", target / "__init__.py")
        copy_tree(chain[-1], staging / chain[-1].relative_to(top))
        experiment_rel = experiment.relative_to(top).as_posix()
    else:  # a lone experiment file: its folder (assets are relative to it)
        copy_tree(experiment.parent, staging / experiment.parent.name)
        experiment_rel = f"{experiment.parent.name}/{experiment.name}"
    # Local modules it imports from outside its package (a shared draw module): their package's
    # folder with the assets beside them, and the __init__.py of each package above.
    staged = chain[-1] if chain else experiment.parent
    for module in map(Path, info.get("local", [])):
        if module.is_relative_to(staged) or module.is_relative_to(sources.core) or \
                module.is_relative_to(sources.renderers):
            continue
        outer, packages = package_chain(module)
        for package in packages:
            init = staging / package.relative_to(outer) / "__init__.py"
            if not init.exists():
                init.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(package / "__init__.py", init)
        if not packages:  # a lone module on the path: the file alone
            if not (staging / module.name).exists():
                shutil.copy2(module, staging / module.name)
            continue
        if module.name == "__init__.py":
            continue  # a package imported on the way: its own __init__.py only
        target = staging / module.parent.relative_to(outer)
        if not (target / module.name).exists():
            copy_tree(module.parent, target)
        report.setdefault("local", []).append(module.parent.relative_to(outer).as_posix())
    # Policies the experiment names, at the same place relative to the files as in the repo.
    for policy in referenced_policies(experiment, chain, info.get("onnx", [])):
        (staging / "policies").mkdir(exist_ok=True)
        shutil.copy2(policy, staging / "policies" / policy.name)
        report["policies"][policy.name] = policy.stat().st_size
    for onnx in info.get("onnx", []):
        if not Path(onnx).exists():
            continue
        inside = [p for p in (staging / "policies" / Path(onnx).name,) if p.exists()]
        in_package = chain and Path(onnx).resolve().is_relative_to(chain[-1])
        if not inside and not in_package:
            report.setdefault("warnings", []).append(f"policy {onnx} is outside policies/ and the experiment's "
                                                     f"folder: not staged")
    # Pure-Python dependencies, vendored next to main.py.
    for name, source in sorted(info.get("packages", {}).items()):
        src = Path(source)
        if name in NATIVE or src.name.split(".")[0] in NATIVE or name.startswith("_"):
            report["skipped"][name] = "compiled: provided by the page's runtime (see main.py)"
            continue
        if src.suffix in (".so", ".pyd"):
            report["skipped"][name] = "compiled extension module: not vendored"
            continue
        if not vendor:
            report["skipped"][name] = "--no-vendor"
            continue
        if src.is_dir():
            skip = GUI_CJK_FONTS if name == "pygame_gui" and gui_fonts != "all" else ()
            report["vendored"][name] = copy_tree(src, staging / src.name, skip_names=skip)
            report["vendored_paths"][name] = src.name
        else:
            report["vendored_paths"][name] = src.name
            shutil.copy2(src, staging / src.name)
            report["vendored"][name] = src.stat().st_size
    (staging / "main.py").write_text(page_main(info["id"], info.get("numpy", False) or bool(info.get("onnx"))))
    (staging / "page_config.py").write_text(page_config(experiment_rel, info["id"], server))
    report["experiment_rel"] = experiment_rel
    return report


# -------------------------------------------------------------------------------------------------- build


def app_name(experiment_id: str) -> str:
    """The staged folder's name, which pygbag 0.9.3 uses for the archive (<name>.apk), lowercased."""
    return re.sub(r"[^a-z0-9_-]+", "-", experiment_id.lower()).strip("-") or "igym"


def require_pygbag() -> None:
    """pygbag is the web extra, not a base dependency: say how to get it before any work is done."""
    import importlib

    try:
        importlib.import_module("pygbag")  # `import pygbag`, without mypy wanting types for it
    except ImportError:
        raise BuildError("building a web page needs pygbag, which is not installed — pip install 'igym[web]' "
                         "(in a checkout: pip install -e '.[web]')") from None


def run_pygbag(staging: Path, experiment_id: str, offline: bool, web: Path, runtime_url: str | None = None) -> Path:
    """``pygbag --build`` on the staged folder; ``web`` holds the project's icon and page template;
    ``runtime_url``: where the page loads pygbag's runtime (CPython-wasm, pygame-ce) from, instead
    of pygbag's CDN (pygbag's own ``--cdn``)."""
    require_pygbag()
    command = [sys.executable, "-m", "pygbag", "--build", "--no_opt", "--ume_block", "0", "--title", experiment_id,
               "--app_name", app_name(experiment_id), "--icon", str(web / "favicon.png")]
    if runtime_url:
        command += ["--cdn", runtime_url]
    if offline:
        command += ["--template", str(web / "index.tmpl")]
    command.append(str(staging))
    # The CWD is the staging folder: pygbag reads pygbag.ini from the CWD.
    done = subprocess.run(command, cwd=str(staging), capture_output=True, text=True, timeout=600)
    web = staging / "build" / "web"
    if done.returncode != 0 or not (web / "index.html").exists():
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise BuildError(f"pygbag failed (exit {done.returncode}): {tail}")
    return web


def cdn_reachable(timeout: float = 5.0, cdn: str = CDN) -> bool:
    import urllib.request
    try:
        with urllib.request.urlopen(cdn + "default.tmpl", timeout=timeout) as answer:
            status: int = answer.status
            return status == 200
    except Exception:  # noqa: BLE001 — no network, DNS, proxy: all the same here
        return False


def add_server(index: Path, server: str | None) -> None:
    """Name the configured server in index.html: a <meta> tag and a JS global (None: no server)."""
    value = html.escape(server or "", quote=True)
    tag = (f'<meta name="igym-server" content="{value}">\n'
           f"<script>window.IGYM_SERVER = {json.dumps(server)};</script>\n")
    text = index.read_text()
    at = text.find("</head>")
    text = text[:at] + tag + text[at:] if at >= 0 else tag + text
    index.write_text(text)


def publish(web: Path, out: Path, protected: Sequence[Path] = ()) -> None:
    out = out.resolve()
    if _holds(out, protected):
        raise BuildError(f"--out {out}: that holds the experiment or igym's files — give a folder such as build/web")
    if out.exists() and any(out.iterdir()):
        if not (out / "index.html").exists():
            raise BuildError(f"--out {out}: not empty and not an earlier build — give a new folder")
        shutil.rmtree(out)
    shutil.copytree(web, out, dirs_exist_ok=True)


def sizes(out: Path, vendored: dict[str, str]) -> list[str]:
    """Sizes to print; ``vendored`` maps package names to their staged top-level names."""
    apk = next(out.glob("*.apk"))
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    groups: dict[str, int] = {}
    with zipfile.ZipFile(apk) as archive:
        for item in archive.infolist():
            parts = item.filename.split("/")[1:]  # under assets/
            group = "igym/renderers" if parts[:2] == ["igym", "renderers"] and len(parts) > 2 else parts[0]
            groups[group] = groups.get(group, 0) + item.compress_size + 76 + 2 * len(item.filename)  # + zip headers
    vendor_bytes = sum(groups.get(path, 0) for path in vendored.values())
    lines = [f"apk: {apk.name} {apk.stat().st_size / 1024:.0f} KiB"
             f" (without the vendored packages about {(apk.stat().st_size - vendor_bytes) / 1024:.0f} KiB)",
             f"build: {out} {total / 1024:.0f} KiB in all (the apk, a .tar.gz of the same files, index.html, "
             f"favicon.png)"]
    big = sorted(((b, g) for g, b in groups.items()), reverse=True)[:8]
    lines.append("apk by part (compressed): " + ", ".join(f"{g} {b / 1024:.0f} KiB" for b, g in big))
    return lines


def serve(out: Path, port: int) -> None:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    # handler.func is SimpleHTTPRequestHandler itself: its class attribute, named directly for mypy
    http.server.SimpleHTTPRequestHandler.extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                                                           ".wasm": "application/wasm",
                                                           ".apk": "application/octet-stream",
                                                           ".js": "text/javascript", ".mjs": "text/javascript"}
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as error:
        raise BuildError(f"--port {port}: cannot serve the page there ({error.strerror or error}) — the page is "
                         f"built in {out}; give another --port") from None
    with server:
        print(f"serving {out} on http://127.0.0.1:{port}/ (Ctrl+C stops; the page loads pygbag's runtime from its "
              f"CDN, so this needs internet)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


# ---------------------------------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = Parser(prog="build_web.sh", description="Build an igym experiment's pygbag web page.")
    parser.add_argument("experiment", help="experiment file, e.g. examples/slime_volleyball/human_ai.py")
    parser.add_argument("--out", default="build/web", help="where the page goes (default build/web)")
    parser.add_argument("--offline", action="store_true",
                        help="use the project's own page template (renderers/web/index.tmpl) instead of "
                             "downloading pygbag's default one from its CDN")
    parser.add_argument("--server", metavar="URL", help="igym server that collects the records, e.g. "
                                                        "wss://host/path (default: the participant downloads them)")
    parser.add_argument("--runtime-url", metavar="URL",
                        help="load pygbag's runtime (CPython-wasm, pygame-ce) from this copy instead of pygbag's CDN, "
                             "e.g. https://study.example.org/pygbag/0.9.3/ — for ethics boards that forbid pages "
                             "calling third-party hosts (pygbag's --cdn)")
    parser.add_argument("--serve", action="store_true", help="serve --out on 127.0.0.1 afterwards")
    parser.add_argument("--port", type=port_number, default=8000, help="port for --serve (default 8000)")
    parser.add_argument("--no-vendor", action="store_true", help="leave the pure-Python dependencies out")
    parser.add_argument("--gui-fonts", choices=("latin", "all"), default="latin",
                        help="pygame_gui fonts to ship: latin (default; drops the fonts of other scripts, 40 MB) "
                             "or all")
    parser.add_argument("--staging", metavar="DIR", help="stage in DIR/<app name> and keep it (default: a temp "
                                                         "dir, removed)")
    parser.add_argument("--stage-only", action="store_true", help="stage (needs --staging) but do not run pygbag")
    return parser.parse_args(argv)


def build(args: argparse.Namespace) -> int:
    experiment = Path(args.experiment)
    if not experiment.is_file():
        raise BuildError(f"{args.experiment}: no such file — give an experiment file (.py), "
                         f"e.g. examples/slime_volleyball/human_ai.py")
    if experiment.suffix != ".py":
        raise BuildError(f"{args.experiment}: not a .py file — give an experiment file")
    if args.server and not re.match(r"^wss?://[^\s/]+", args.server):
        raise BuildError(f"--server {args.server}: give a WebSocket URL such as wss://host/path")
    if args.stage_only and not args.staging:
        raise BuildError("--stage-only keeps nothing without --staging DIR")
    if not args.stage_only:
        require_pygbag()  # before the minutes of staging, not after
    sources = find_sources()
    experiment = experiment.resolve()
    protected = [p for p in (sources.checkout, sources.core, sources.renderers, page_root(experiment)) if p]
    info = probe(experiment, sources)
    for warning in info.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    runtime = args.runtime_url
    if runtime is not None:
        if not re.match(r"^(https?://[^\s/]+|/)\S*$", runtime):
            raise BuildError(f"--runtime-url {runtime}: give the URL (or the site path, /…) of a copy of pygbag's "
                             f"runtime, e.g. https://study.example.org/pygbag/0.9.3/")
        runtime = runtime if runtime.endswith("/") else runtime + "/"
    if not args.offline and not args.stage_only and not cdn_reachable(cdn=runtime or CDN):
        raise BuildError(f"cannot reach pygbag's runtime at {runtime or CDN} for its page template — use --offline "
                         f"for the project's own template")
    container = prepare_staging(Path(args.staging) if args.staging else None, protected)
    staging = container / app_name(info["id"])  # pygbag names the archive after this folder
    staging.mkdir()
    try:
        report = stage(experiment, staging, info, sources, server=args.server, vendor=not args.no_vendor,
                       gui_fonts=args.gui_fonts)
        for warning in report.get("warnings", []):
            print(f"warning: {warning}", file=sys.stderr)
        print(f"staged {info['id']} in {staging}")
        if report["vendored"]:
            print("vendored: " + ", ".join(f"{n} {b / 1024:.0f} KiB" for n, b in
                                           sorted(report["vendored"].items(), key=lambda x: -x[1])))
        for name, why in report["skipped"].items():
            print(f"not vendored: {name} ({why})")
        if report.get("local"):
            print("local modules' folders: " + ", ".join(sorted(set(report["local"]))))
        if report["policies"]:
            print("policies: " + ", ".join(f"{n} {b / 1024:.0f} KiB" for n, b in report["policies"].items()))
        if args.stage_only:
            return 0
        web = run_pygbag(staging, info["id"], args.offline, sources.web, runtime)
        out = Path(args.out)
        try:
            publish(web, out, protected)
        except OSError as error:
            raise BuildError(f"--out {args.out}: cannot write the page there ({error.strerror or error}) — give "
                             f"a folder you can write") from None
        add_server(out / "index.html", args.server)
    finally:
        if not args.staging:
            shutil.rmtree(container, ignore_errors=True)
    for line in sizes(out, report["vendored_paths"]):
        print(line)
    if not args.offline:
        print(f"note: index.html uses pygbag's default template from {runtime or 'its CDN'}")
    if runtime is None:
        print(f"note: the page loads pygbag's runtime from {CDN} (a third-party host): --runtime-url "
              f"points it at a copy you serve yourself")
    if args.serve:
        serve(out.resolve(), args.port)
    return 0


def command(argv: Sequence[str] | None = None) -> int:
    """The build itself: user errors raise :class:`BuildError` (``main`` prints them)."""
    args = parse_args(argv)
    try:
        return build(args)
    except subprocess.TimeoutExpired as error:
        raise BuildError(f"{Path(str(error.cmd[0])).name} took too long ({error.timeout:.0f} s)") from None


def main(argv: Sequence[str] | None = None) -> int:
    """``build_web.sh``, ``python -m igym.renderers.webbuild`` and ``igym-web``: a mistake is one line and
    exit 2, Ctrl+C exits 130 (igym.cli)."""
    return cli_main(command, argv)


if __name__ == "__main__":
    sys.exit(main())
