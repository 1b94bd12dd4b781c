"""The report's HTML: one self-contained page (styles inline, images as data: URLs, no
scripts, no external references), readable in light and dark themes and on paper.

Only the page's pieces live here — escaping, tables, figures, the page frame — so
:mod:`igym.report` can say what each section shows without markup in the way.
"""

from __future__ import annotations

import base64
from html import escape
from typing import Any
from collections.abc import Iterable, Sequence

CSS = """
:root { color-scheme: light dark; --bg: #f6f7f9; --card: #ffffff; --text: #1f2933; --muted: #5f6b7a;
  --line: #dde2e8; --accent: #2563eb; --flag: #b42318; --flag-bg: #fef3f2; --ok: #067647; --zebra: #f9fafb; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #111418; --card: #1a1f25; --text: #e6e9ed; --muted: #9aa5b1; --line: #2e353d;
    --accent: #7aa2ff; --flag: #ff8a80; --flag-bg: #2a1a1a; --ok: #6fd4a4; --zebra: #1e242b; }
  figure img { filter: brightness(0.93); }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); line-height: 1.5;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 28px 24px 48px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 2px 0; color: var(--muted); }
.counts { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0 6px; padding: 0; list-style: none; }
.counts li { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; }
.counts b { display: block; font-size: 22px; line-height: 1.2; }
.counts span { color: var(--muted); font-size: 13px; }
nav { margin: 12px 0 0; font-size: 14px; }
nav a { color: var(--accent); margin-right: 14px; text-decoration: none; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 18px 22px;
  margin: 22px 0; }
section h2 { margin: 0 0 6px; font-size: 20px; }
section h3 { margin: 20px 0 6px; font-size: 16px; }
p.lead, p.note { color: var(--muted); margin: 4px 0 10px; }
p.empty { color: var(--muted); font-style: italic; }
figure { margin: 12px 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px;
  background: #fff; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 14px; min-width: 40%; }
th, td { text-align: left; padding: 4px 12px 4px 0; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 13px; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; padding-right: 16px; }
tbody tr:nth-child(even) { background: var(--zebra); }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin: 0 5px 0 0;
  vertical-align: -1px; print-color-adjust: exact; -webkit-print-color-adjust: exact; }
.legend span.item { margin-right: 14px; white-space: nowrap; }
.flag { color: var(--flag); font-weight: 600; }
.ok { color: var(--ok); font-weight: 600; }
td ul, .rules { margin: 0; padding-left: 18px; }
.rules li { margin: 2px 0; }
blockquote { margin: 4px 0; padding: 2px 10px; border-left: 3px solid var(--line); white-space: pre-wrap; }
details summary { cursor: pointer; color: var(--accent); }
code { font-family: ui-monospace, "SF Mono", Menlo, Consolas, monospace; font-size: 13px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 4px 20px; }
@media print {
  :root { --bg: #fff; --card: #fff; --text: #000; --muted: #444; --line: #bbb; --zebra: #fff; }
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  nav { display: none; }
  section { border: none; padding: 0; margin: 0 0 18px; break-before: page; }
  section:first-of-type { break-before: auto; }
  figure, table, tr { break-inside: avoid; }
  figure img { filter: none; border: none; }
  details > *:not(summary) { display: block; }
}
"""


def text(value: Any) -> str:
    """Escaped text (everything from the data file passes through here)."""
    return escape(str(value), quote=True)


def table(head: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = (),
          raw: Sequence[int] = ()) -> str:
    """A table; ``numeric`` columns are right-aligned, ``raw`` columns are HTML already made here."""
    def cell(tag: str, i: int, value: Any) -> str:
        css = ' class="n"' if i in numeric else ""
        return f"<{tag}{css}>{value if i in raw else text(value)}</{tag}>"
    head_html = "".join(cell("th", i, h) for i, h in enumerate(head))
    body = "\n".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head_html}</tr></thead><tbody>\n{body}\n</tbody></table>"


def image(png: bytes, alt: str, caption: str = "", width_px: int = 768) -> str:
    """A figure with the PNG embedded as a data: URL (the report stays one file)."""
    data = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{text(caption)}</figcaption>" if caption else ""
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{text(alt)}" width="{width_px}">'
            f"{cap}</figure>")


def swatch(color: str) -> str:
    return f'<span class="swatch" style="background:{text(color)}"></span>'


def section(section_id: str, title: str, lead: str, body: str) -> str:
    """One report section: an id a reader (or a test) can find, a heading, one line saying what it shows."""
    return (f'<section id="{text(section_id)}">\n<h2>{text(title)}</h2>\n<p class="lead">{text(lead)}</p>\n'
            f"{body}\n</section>")


def empty(message: str) -> str:
    return f'<p class="empty">{text(message)}</p>'


def page(title: str, header: str, sections: Sequence[str]) -> str:
    """The whole document."""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta name="color-scheme" content="light dark">\n<title>{text(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n<main>\n{header}\n" + "\n".join(sections)
            + "\n</main>\n</body>\n</html>\n")
