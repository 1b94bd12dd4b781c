"""The documentation: the MkDocs site builds with ``--strict``, the README stays the short front
door (with the two quickstart blocks CI and the newcomer check run), and what the docs name
exists — every linked file, every CLI flag, every wire message, every table and column.

The site is built for real (``python -m mkdocs build --strict``, mkdocstrings reading the
docstrings) into a temporary folder; the flags, messages and tables are read from the code
itself (argparse ``--help``, ``igym.wire``, a real SQLite file written by ``SqliteSink``).
"""

from __future__ import annotations

import html
import os
import re
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from igym import wire

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CONFIG = DOCS / "mkdocs" / "mkdocs.yml"
README = ROOT / "README.md"

KEY_PAGES = ["index.html", "tutorials/first-study/index.html", "tutorials/online-study/index.html",
             "tutorials/networked-study/index.html", "guides/experiments/index.html",
             "guides/playing-envs/index.html", "guides/dashboard/index.html", "guides/report/index.html",
             "reference/play/index.html", "reference/server/index.html", "reference/data/index.html",
             "reference/build-web/index.html", "reference/schema/index.html", "reference/wire/index.html",
             "reference/security/index.html", "reference/api/experiment/index.html", "scaling/index.html",
             "benchmarks/index.html"]


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def doc_pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "mkdocs" not in p.relative_to(DOCS).parts)


def without_code_blocks(text: str) -> str:
    return re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.M | re.S)


def fenced_block_after(text: str, marker: str) -> tuple[str, str]:
    """(the line right after ``marker``, the fenced block that follows it) — as newcomer.sh reads it."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if marker in line)
    assert lines[at + 1].startswith("```"), f"{marker} must be followed directly by a fenced block"
    end = next(i for i in range(at + 2, len(lines)) if lines[i].startswith("```"))
    return lines[at + 1], "\n".join(lines[at + 2:end])


# --- the site ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(CONFIG), "-d", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=600,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}"
    return out


def test_site_builds_strict_with_every_key_page(site):
    missing = [name for name in KEY_PAGES if not (site / name).is_file()]
    assert not missing, missing
    assert "Your first study" in (site / "tutorials/first-study/index.html").read_text(encoding="utf-8")


def test_api_reference_is_generated_from_the_docstrings(site):
    import igym

    api = {p.parent.name: p.read_text(encoding="utf-8") for p in (site / "reference" / "api").glob("*/index.html")}
    for module in ("experiment", "scenes", "questions", "controls", "actions", "hooks", "errors"):
        assert module in api, f"no API page for igym.{module}"
        docstring = __import__(f"igym.{module}", fromlist=["_"]).__doc__
        assert docstring.splitlines()[0].split(":")[0] in html.unescape(api[module]), module
    everything = "".join(api.values())
    for name in igym.__all__:
        if name == "__version__":
            continue
        obj = getattr(igym, name)
        assert f'id="{obj.__module__}.{name}"' in everything, f"igym.{name} is not in the API reference"
    # the Sphinx roles of the docstrings (:class:`Axis`) are shown as code, not as raw text
    assert not re.search(r":(class|mod|meth|func|data):<code>", everything)


def test_every_image_and_link_of_the_built_site_resolves(site):
    broken = []
    for built in site.rglob("*.html"):
        text = built.read_text(encoding="utf-8")
        for target in re.findall(r'(?:src|href)="([^"#?]+)[^"]*"', text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
                continue
            path = (built.parent / html.unescape(target)).resolve()
            if not (path.is_file() or (path / "index.html").is_file()):
                broken.append(f"{built.relative_to(site)} → {target}")
    assert not broken, broken[:20]
    # the examples' screenshots, outside docs/, are published with the site
    assert (site / "_repo/examples/slime_volleyball/screens/consent.png").is_file()
    assert (site / "dashboard.png").is_file()


# --- README ---------------------------------------------------------------------------------

def test_readme_is_short_and_keeps_both_quickstart_blocks():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150, f"README has {len(text.splitlines())} lines (at most 150)"
    fence, run = fenced_block_after(text, "<!-- quickstart:run -->")
    assert fence == "```bash"
    commands = [line for line in run.splitlines() if line.strip()]
    assert commands[0] == "pip install -e ."
    target = commands[1].split("python -m igym.play ", 1)[1].split()[0]
    assert (ROOT / target).is_file(), f"the quickstart plays {target}, which does not exist"

    fence, test = fenced_block_after(text, "<!-- quickstart:test -->")
    assert fence == "```bash"
    extras = re.search(r"pip install -e '\.\[([a-z,]+)\]'", test)
    assert extras and "python -m pytest" in test
    # CI runs only this block: its extras must bring what this very test needs to build the site
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    wanted = " ".join(req for extra in extras.group(1).split(",") for req in declared[extra])
    for requirement in ("mkdocs-material", "mkdocstrings[python]"):
        assert requirement in wanted, f"pip install -e '.[{extras.group(1)}]' does not install {requirement}"
    assert "mkdocs-material" in " ".join(declared["docs"]) and "mkdocstrings[python]" in " ".join(declared["docs"])


def test_every_relative_link_and_image_points_at_a_file():
    broken = []
    for source in [README, *doc_pages()]:
        text = without_code_blocks(source.read_text(encoding="utf-8"))
        targets = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)", text) + re.findall(r'<img[^>]+src="([^"]+)"', text)
        for target in targets:
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
                continue
            if not (source.parent / target.split("#", 1)[0]).exists():
                broken.append(f"{source.relative_to(ROOT)} → {target}")
    assert not broken, broken


def test_readme_performance_matches_the_benchmarks_page():
    text = README.read_text(encoding="utf-8")
    section = text.split("## Performance", 1)[1].split("\n## ", 1)[0]
    assert "(docs/benchmarks.md)" in section
    full = page("benchmarks.md")

    def machine(doc: str) -> str:
        return re.search(r"Latest run — (.*?\d{4}-\d{2}-\d{2})", " ".join(doc.split())).group(1)

    assert machine(section) == machine(full)
    cells = [cell.strip() for row in section.splitlines() if row.startswith("| ") and "---" not in row
             for cell in row.strip("|").split("|")[1:]]
    numbers = [cell for cell in cells if re.search(r"\d", cell) and cell != "igym"]
    assert len(numbers) >= 10
    for cell in numbers:
        assert cell in full, f"README's Performance number {cell!r} is not on the benchmarks page"


# --- what the reference pages name exists ---------------------------------------------------------

def help_text(argv: list[str]) -> str:
    run = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env={**os.environ, "COLUMNS": "200", "SDL_VIDEODRIVER": "dummy", "PYTHON": sys.executable})
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.mark.parametrize("doc, commands", [
    ("reference/play.md", [["-m", "igym.play"]]),
    ("reference/server.md", [["-m", "igym.server"]]),
    ("reference/data.md", [["-m", "igym.data", sub] for sub in ("summary", "report", "export", "replay")]),
])
def test_cli_reference_lists_every_option(doc, commands):
    text = page(doc)
    for command in commands:
        flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", help_text([sys.executable, *command, "--help"])))
        flags.discard("--help")
        assert flags, command
        missing = sorted(flag for flag in flags if f"`{flag}" not in text)
        assert not missing, f"{doc} does not describe {missing} of {' '.join(command)}"
        if len(command) > 2:
            assert f"## {command[-1]}" in text


def test_build_web_reference_lists_every_option():
    out = help_text(["bash", str(ROOT / "build_web.sh"), "--help"])
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", out)) - {"--help"}
    assert "--offline" in flags
    text = page("reference/build-web.md")
    assert not sorted(flag for flag in flags if f"`{flag}" not in text)


def table_rows(text: str) -> dict[str, list[str]]:
    """Markdown table rows keyed by their first cell without backticks."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows.setdefault(cells[0].strip("`"), cells)
    return rows


def test_wire_page_matches_igym_wire():
    text = page("reference/wire.md")
    client = table_rows(text.split("## Client → server", 1)[1].split("\n## ", 1)[0])
    for kind, message in wire.CLIENT_MESSAGES.items():
        assert kind in client, f"client message {kind!r} is missing"
        _, required, optional, max_bytes, per_s, burst, _ = client[kind]
        assert set(re.findall(r"`(\w+)`", required)) == set(message.fields.required), kind
        assert set(re.findall(r"`(\w+)`", optional)) == set(message.fields.optional), kind
        assert (int(max_bytes), float(per_s), float(burst)) == (message.max_bytes, message.per_s, message.burst), kind
    assert set(client) - {"type"} == set(wire.CLIENT_MESSAGES)
    server = table_rows(text.split("## Server → client", 1)[1].split("\n## ", 1)[0])
    assert set(server) - {"type"} == set(wire.SERVER_MESSAGES)
    codes = table_rows(text.split("## Close codes", 1)[1].split("\n## ", 1)[0])
    constants = {name: value for name, value in vars(wire).items() if name.startswith("CLOSE_") and type(value) is int}
    assert {cells[1].strip("`"): int(code) for code, cells in codes.items() if code != "code"} == constants
    sizes = table_rows(text.split("## Sizes", 1)[1].split("\n## ", 1)[0])
    for name in ("MAX_HELLO_BYTES", "MAX_MESSAGE_BYTES", "MAX_STATE_BYTES", "MAX_UPLOAD_BYTES"):
        assert int(sizes[name][1]) == getattr(wire, name), name
    assert f"Protocol version: **{wire.PROTOCOL_VERSION}**" in text


def test_schema_page_names_every_table_and_column(tmp_path):
    from igym.sqlite_sink import SCHEMA_VERSION, SqliteSink

    sink = SqliteSink(tmp_path / "study.sqlite")
    sink.close()
    db = sqlite3.connect(tmp_path / "study.sqlite")
    tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
              if not name.startswith("sqlite_")]
    assert "steps" in tables and "answers" in tables
    text = page("reference/schema.md")
    for table in tables:
        assert f"\n### {table}\n" in text, f"table {table} is not documented"
        section = text.split(f"\n### {table}\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
        for (column,) in db.execute(f"SELECT name FROM pragma_table_info('{table}')"):
            assert f"`{column}`" in section, f"{table}.{column} is not documented"
    assert f"| `version` | {SCHEMA_VERSION};" in text


def test_sweep_tally_adds_up():
    text = page("guides/playing-envs.md")
    played, refused, total = map(int, re.search(r"\*\*(\d+) played, (\d+) refused, of (\d+)\.\*\*", text).groups())
    rows = re.findall(r"^\| (played|refused) \((\d+)\)", text, flags=re.M)
    assert played + refused == total
    assert sum(int(n) for kind, n in rows if kind == "played") == played
    assert sum(int(n) for kind, n in rows if kind == "refused") == refused
    names = re.search(r"^\| played \(\d+\) \| (.*) \|$", text, flags=re.M).group(1)
    assert len(re.findall(r"[\w/]+-v\d+|\w+_v\d+", names)) == played
