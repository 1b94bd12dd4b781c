"""Makes renderers/fonts/*.ttf, the pages' and the HUD's font (run once; the files are committed).

    python renderers/fonts/make_fonts.py [DEJAVU_FOLDER]

The fonts are DejaVu Sans (regular, bold, oblique, bold oblique) cut down to the
characters a study's texts need: Latin with every accent (Western, Central and Eastern
European, Vietnamese, Turkish), Greek and Cyrillic, punctuation (– — … « » “ ” ‘ ’ •),
currency, fractions, arrows (← → ↑ ↓ ⇐ ⇒ …), a few maths signs and the ticks, crosses,
stars and shapes instructions use (✓ ✗ ★ ● ■ ▶). Cutting the full families (2.7 MB) to
these (0.58 MB, 0.34 MB zipped) keeps the web page's apk small. pygame_gui's own
Noto Sans has no arrows, so pages drew "Move with ← and →" as empty boxes.

DejaVu's licence (LICENSE_DEJAVU, copied beside the fonts) allows modified copies under a
name without "Bitstream" or "Vera"; the family keeps its name, DejaVu Sans. The source is
matplotlib's copy of DejaVu 2.x (``matplotlib/mpl-data/fonts/ttf``) unless a folder with
the four DejaVuSans*.ttf files is given. Needs fontTools (a matplotlib dependency).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

FACES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf")

RANGES = (
    (0x0020, 0x007E),  # Basic Latin
    (0x00A0, 0x024F),  # Latin-1 Supplement, Latin Extended-A and -B
    (0x02B0, 0x036F),  # spacing modifiers, combining accents
    (0x0370, 0x03FF),  # Greek
    (0x0400, 0x04FF),  # Cyrillic
    (0x1E00, 0x1EFF),  # Latin Extended Additional (Vietnamese, Welsh…)
    (0x2000, 0x206F),  # General Punctuation: dashes, quotes, ellipsis, bullet
    (0x2070, 0x209F),  # super- and subscripts
    (0x20A0, 0x20CF),  # currency (€ ₹ ₽ …)
    (0x2100, 0x214F),  # letterlike (№ ™ ℃)
    (0x2150, 0x218F),  # fractions, Roman numerals
    (0x2190, 0x21FF),  # arrows
)
SYMBOLS = (
    "−×÷±≈≠≤≥∞√"  # maths a text may use
    "■□▲△▶▷▼▽◀◁◆◇○●"  # shapes
    "★☆☐☑☒☺☹♥"  # stars, boxes, faces
    "✓✔✕✖✗✘❤"  # ticks and crosses
    "\ufffd"  # the replacement character
)


def codepoints() -> list[int]:
    """Every character the cut fonts keep."""
    return [c for low, high in RANGES for c in range(low, high + 1)] + [ord(c) for c in SYMBOLS]


def source_folder() -> Path:
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    import matplotlib
    return Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf"


def cut(source: Path, target: Path) -> int:
    """Write ``source`` cut to :func:`codepoints` at ``target``; returns its size in bytes."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.layout_features = ["*"]  # kerning and the accent marks' positioning stay
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.hinting = False  # FreeType's autohinter draws it as well at page sizes; a quarter smaller
    options.drop_tables += ["FFTM"]
    font = TTFont(source)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=codepoints())
    subsetter.subset(font)
    font.save(target)
    return target.stat().st_size


if __name__ == "__main__":
    folder, here = source_folder(), Path(__file__).resolve().parent
    for face in FACES:
        print(f"{face}: {cut(folder / face, here / face):,} bytes")
    shutil.copy2(folder / "LICENSE_DEJAVU", here / "LICENSE_DEJAVU")
