"""Every text a shipped study shows can be drawn: no empty boxes where ← → ↑, accents or dashes
should be.

Each experiment file under ``examples/`` is loaded; each of its pages (consent, info, survey,
end, and every game's instructions page) is built and drawn with the real pygame_gui page at
1280×720, and its texts — titles, markup text as drawn, buttons, questions, scale labels,
options, the messages a page can show — are checked glyph by glyph against the fonts the page
really uses (those its theme names for text boxes; pygame_gui's own default when it names
none). The HUD's texts and the networked client's messages are checked against their fonts too.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pygame

from igym.experiment import Game, HudInfo, default_hud
from igym.loader import load_experiment
from igym.markup import to_html
from igym.scenes import Consent, End, Info, Survey

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p for p in (ROOT / "examples").rglob("*.py") if "experiment = Experiment(" in p.read_text())
PAGE_WORDS = ("Continue", "Close", "Start", ">", "*", "–", "Your completion code: K7QX2M9D", "Continue here:")


def drawn(markup: str) -> str:
    """The characters a page draws for ``markup`` (tags gone, bullets in, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", to_html(markup).replace("<br>", "\n")))


def page_fonts() -> list[Path]:
    """The font files a page draws its text with: the faces the page theme names for text boxes
    and buttons, or — when it names none — pygame_gui's default font, Noto Sans."""
    import pygame_gui

    from igym.renderers.pages import theme_for
    theme = theme_for(720)
    files = []
    for widget in ("text_box", "button", "#title"):
        block = theme.get(widget, {}).get("font") or {}
        files += [Path(block[k]) for k in ("regular_path", "bold_path", "italic_path", "bold_italic_path")
                  if block.get(k)]
    if not files:
        data = Path(pygame_gui.__file__).parent / "data"
        files = [data / f"NotoSans-{face}.ttf" for face in ("Regular", "Bold", "Italic", "BoldItalic")]
    return list(dict.fromkeys(files))


def page_texts(scene) -> list[str]:
    """Every text a page scene can show."""
    texts = [getattr(scene, "title", ""), getattr(scene, "button", "")]
    if isinstance(scene, (Info, Consent, End)):
        texts.append(drawn(scene.text))
    if isinstance(scene, Consent):
        texts += [scene.agree, scene.decline, drawn(scene.declined_text)]
    if isinstance(scene, End):
        texts.append(scene.redirect_url("K7QX2M9D", "P-1234abcd") or "")
    if isinstance(scene, Survey):
        texts.append(drawn(scene.intro))
        for question in scene.questions:
            texts.append(drawn(question.text))
            texts += [str(t) for t in getattr(question, "labels", None) or ()]
            texts += [str(t) for t in getattr(question, "options", None) or ()]
            texts.append(question.validate(None) or "")
    return [t for t in texts if t]


def shipped_pages():
    """(file, page scene) for every page of every shipped experiment, instructions pages included."""
    for path in SHIPPED:
        if "overcooked" in str(path) and not _has("cogrid"):
            continue
        if "pettingzoo" in str(path) and not _has("pymunk"):
            continue
        experiment = load_experiment(path)
        for scene in experiment.all_scenes():
            page = scene.instructions_page() if isinstance(scene, Game) else scene
            if page is not None:
                yield path, experiment, page


def _has(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


def test_the_check_finds_what_a_font_lacks():
    """The check itself: pygame_gui's Noto Sans (the page font before) has no arrows."""
    import pygame_gui

    from igym.renderers.typeface import missing_glyphs
    noto = Path(pygame_gui.__file__).parent / "data" / "NotoSans-Regular.ttf"
    assert missing_glyphs("Move with ← and →; ↑ jumps. Café – «ok»", noto) == ["←", "→", "↑"]
    assert missing_glyphs("Move with ← and →; ↑ jumps. Café – «ok»") == []


def test_every_shipped_page_draws_every_character_it_shows():
    from igym.renderers.pages import Page
    from igym.renderers.typeface import missing_glyphs

    fonts = page_fonts()
    surface = pygame.display.set_mode((1280, 720))
    missing: dict[str, set[str]] = {}
    pages = 0
    for path, experiment, scene in shipped_pages():
        page = Page(surface, scene, base_dir=experiment.base_dir, code="K7QX2M9D", participant="P-1234abcd")
        page.update(0.0, 0.0)
        page.draw()  # drawn for real, at the lab's window size
        page.close()
        pages += 1
        for text in page_texts(scene) + list(PAGE_WORDS):
            for font in fonts:
                lacking = missing_glyphs(text, font)
                if lacking:
                    where = f"{path.relative_to(ROOT)} {scene.kind} {scene.title or scene.name!r} ({font.name})"
                    missing.setdefault(where, set()).update(lacking)
    pygame.display.quit()
    assert pages >= 12  # the slime study alone has eight
    assert not missing, "empty boxes instead of: " + "; ".join(f"{w}: {''.join(sorted(c))}"
                                                              for w, c in missing.items())


def test_the_hud_and_the_clients_messages_draw_every_character():
    from igym.renderers.draw import FrameRenderer
    from igym.renderers.typeface import REGULAR, missing_glyphs
    from igym.study import END_TEXTS

    renderer = FrameRenderer(pygame.Surface((640, 400)), (600, 360), hud=True)
    hud_texts = []
    info = HudInfo(episode=1, episodes=3, step=120, max_steps=900, fps=30, returns={"agent_left": 2.0})
    for path in SHIPPED:
        if ("overcooked" in str(path) and not _has("cogrid")) or ("pettingzoo" in str(path) and not _has("pymunk")):
            continue
        for game in load_experiment(path).games():
            hud = game.hud or default_hud
            hud_texts += [f"{label}: {text}" for label, text in hud(info).items()]
    assert hud_texts
    lacking = {t: missing_glyphs(t, renderer.font_path) for t in hud_texts}
    assert not {t: c for t, c in lacking.items() if c}, lacking
    messages = [*END_TEXTS.values(), "Connecting…", "Waiting for 1 more — 1:54", "partner reconnecting",
                "The study is complete."]
    lacking = {t: missing_glyphs(t, REGULAR) for t in messages}
    assert not {t: c for t, c in lacking.items() if c}, lacking
