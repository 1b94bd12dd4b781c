"""The small text markup of Info, Consent, Survey and End scenes, turned into widget HTML.

Researchers write scene text as plain text with a few marks — the subset of Markdown
people already know — and never see the widget toolkit's HTML:

- ``**bold**`` and ``*italic*``
- ``[red]coloured text[/red]`` with a colour name from :data:`COLORS` or ``[#e04040]…[/#e04040]``
- lines starting with ``- `` or ``* `` are bullet points; ``1. `` numbered points
- a blank line starts a new paragraph

:func:`to_html` gives the HTML subset pygame_gui's text boxes draw (``<b> <i> <font
color> <br>``). It is pure Python (no pygame), so the same text is checked by the
experiment loader, rendered on the desktop and in the browser, and stored as written.
"""

from __future__ import annotations

import html
import re

COLORS = {
    "red": "#D04040", "green": "#2E9E4F", "blue": "#3A6FD8", "orange": "#E08A1E", "purple": "#8E5BD0",
    "grey": "#808080", "gray": "#808080", "black": "#000000", "white": "#FFFFFF", "yellow": "#E0C020",
}

_BOLD = re.compile(r"\*\*(.+?)\*\*", re.S)
_ITALIC = re.compile(r"(?<![*\w])\*(?!\s)(.+?)(?<!\s)\*(?![*\w])", re.S)
_COLOR = re.compile(r"\[(#[0-9a-fA-F]{6}|[a-z]+)\](.+?)\[/\1\]", re.S)
_BULLET = re.compile(r"^\s*[-*]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*(\d+)[.)]\s+(.*)$")


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = _BOLD.sub(r"<b>\1</b>", text)
    text = _ITALIC.sub(r"<i>\1</i>", text)

    def color(match: re.Match[str]) -> str:
        name = match.group(1)
        value = name if name.startswith("#") else COLORS.get(name)
        if value is None:
            return match.group(2)
        return f'<font color="{value}">{match.group(2)}</font>'
    return _COLOR.sub(color, text)


def to_html(text: str) -> str:
    """Markup → the HTML subset of pygame_gui text boxes (paragraphs, bullets, bold, colour)."""
    out: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        lines: list[str] = []
        prose = False  # a wrapped line of running text continues the line before it
        for line in paragraph.splitlines():
            bullet = _BULLET.match(line)
            numbered = _NUMBERED.match(line)
            if bullet:
                lines.append("  \u2022 " + bullet.group(1))
                prose = False
            elif numbered:
                lines.append(f"  {numbered.group(1)}. " + numbered.group(2))
                prose = False
            elif prose:
                lines[-1] += " " + line.strip()
            else:
                lines.append(line.strip())
                prose = True
        out.append("<br>".join(_inline(line) for line in lines))
    return "<br><br>".join(out)


def unknown_colors(text: str) -> list[str]:
    """Colour marks that name no known colour (the experiment check reports them)."""
    return [m.group(1) for m in _COLOR.finditer(text) if not m.group(1).startswith("#") and m.group(1) not in COLORS]


def plain(text: str) -> str:
    """The text with its marks removed (for logs, the terminal and the autopilot)."""
    return re.sub(r"<[^>]+>", "", to_html(text).replace("<br>", "\n")).replace("&amp;", "&")
