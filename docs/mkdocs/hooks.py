"""MkDocs hooks: publish the repository files that the pages link to; tidy docstring roles.

The pages link to files outside docs/ as GitHub resolves them, relative to the page
(``../../examples/slime_volleyball/screenshot.png``), so they work when the Markdown is read on
GitHub. MkDocs only publishes files inside its docs_dir, so these hooks add each such file
to the site under ``_repo/<path in the repository>`` and point the links there. A Markdown
file published that way (``policies/README.md``) becomes a page whose own links are followed
the same way.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)((?:\s+\"[^\"]*\")?\))")
ROLE = re.compile(r":(?:class|mod|meth|data|func|attr|exc|obj):<code>(~?)([^<]*)</code>")
PREFIX = "_repo"


def _roots(config) -> tuple[Path, Path]:
    docs = Path(config["docs_dir"]).resolve()
    return docs, docs.parent


def _real(src_uri: str, docs: Path, repo: Path) -> Path:
    """Where a page of the site lives in the repository."""
    if src_uri.startswith(PREFIX + "/"):
        return repo / src_uri[len(PREFIX) + 1:]
    return docs / src_uri


def _site_uri(target: str, page_uri: str, docs: Path, repo: Path) -> str | None:
    """The site path of the repository file a relative link points at, or None (a URL, an anchor,
    a missing file — MkDocs reports those itself)."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith(("/", "#")):
        return None
    path = target.split("#", 1)[0]
    if not path:
        return None
    resolved = (_real(page_uri, docs, repo).parent / path).resolve()
    if not resolved.is_file():
        return None
    if resolved.is_relative_to(docs):
        return resolved.relative_to(docs).as_posix()
    if resolved.is_relative_to(repo):
        return f"{PREFIX}/{resolved.relative_to(repo).as_posix()}"
    return None


def on_files(files: Files, config) -> Files:
    docs, repo = _roots(config)
    known = {file.src_uri for file in files}
    queue = [file.src_uri for file in files if file.src_uri.endswith(".md")]
    while queue:
        page_uri = queue.pop()
        text = _real(page_uri, docs, repo).read_text(encoding="utf-8")
        for match in LINK.finditer(text):
            uri = _site_uri(match.group(2), page_uri, docs, repo)
            if uri is None or uri in known or not uri.startswith(PREFIX + "/"):
                continue
            known.add(uri)
            files.append(File.generated(config, uri, abs_src_path=str(_real(uri, docs, repo))))
            if uri.endswith(".md"):
                queue.append(uri)
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    docs, repo = _roots(config)
    here = posixpath.dirname(page.file.src_uri) or "."

    def point(match: re.Match) -> str:
        target = match.group(2)
        uri = _site_uri(target, page.file.src_uri, docs, repo)
        if uri is None:
            return match.group(0)
        anchor = "#" + target.split("#", 1)[1] if "#" in target else ""
        return f"{match.group(1)}{posixpath.relpath(uri, here)}{anchor}{match.group(3)}"

    return LINK.sub(point, markdown)


def on_page_content(html: str, page, config, files) -> str:
    """The docstrings use Sphinx roles (:class:`Axis`); show them as plain code, ``~`` as the last name."""
    return ROLE.sub(lambda m: f"<code>{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}</code>", html)
