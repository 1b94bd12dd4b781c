"""The font igym draws its own text with: pages, the HUD, the client's messages.

One bundled family (DejaVu Sans cut to the characters studies use, see
``fonts/make_fonts.py``) instead of whatever the toolkit or pygame brings: pygame_gui's
Noto Sans and pygame's FreeSans have no arrows, so "Move with ← and →" showed empty boxes.
The files are package data, so the desktop, the server's clients and the web build (which
stages ``renderers/`` whole) all draw the same glyphs. :func:`missing_glyphs` tells which
characters of a text a font cannot draw (the test over every shipped page uses it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FONT_DIR = Path(__file__).resolve().parent / "fonts"
FAMILY = "igym_sans"  # the name pygame_gui themes use for it
REGULAR = FONT_DIR / "DejaVuSans.ttf"
BOLD = FONT_DIR / "DejaVuSans-Bold.ttf"
ITALIC = FONT_DIR / "DejaVuSans-Oblique.ttf"
BOLD_ITALIC = FONT_DIR / "DejaVuSans-BoldOblique.ttf"
FACES = {"regular": REGULAR, "bold": BOLD, "italic": ITALIC, "bold_italic": BOLD_ITALIC}


def theme_font(size: int, bold: bool = False) -> dict[str, str]:
    """A pygame_gui theme ``font`` block: the bundled family at ``size`` points, with the paths
    of all four faces (so **bold** and *italic* markup use the designed faces)."""
    block = {"name": FAMILY, "size": str(size), "regular_path": str(REGULAR), "bold_path": str(BOLD),
             "italic_path": str(ITALIC), "bold_italic_path": str(BOLD_ITALIC)}
    if bold:
        block["bold"] = "1"
    return block


def missing_glyphs(text: str, path: str | Path | None = REGULAR) -> list[str]:
    """The characters of ``text`` (line breaks aside) that the font at ``path`` (None: pygame's
    default font) has no glyph for, each once, in order — what would be drawn as an empty box."""
    import pygame.freetype

    if not pygame.freetype.get_init():
        pygame.freetype.init()
    font = _font(None if path is None else str(path))
    wanted = "".join(dict.fromkeys(c for c in text if c not in "\n\r\t"))
    if not wanted:
        return []
    return [c for c, metrics in zip(wanted, font.get_metrics(wanted)) if metrics is None]


_FONTS: dict[str | None, Any] = {}


def _font(path: str | None) -> Any:
    import pygame.freetype

    font = _FONTS.get(path)
    if font is None:
        font = _FONTS[path] = pygame.freetype.Font(path, 16)
    return font
