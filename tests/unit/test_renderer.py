"""The pygame renderer on real (dummy-driver) surfaces: placement, depth, caches, interpolation."""

import json

import pygame
import pytest

from igym import render as r
from igym.renderers.assets import AssetError, Assets
from igym.renderers.draw import FrameRenderer

RED, BLUE, GREEN, BG, BAR = (255, 0, 0), (0, 0, 255), (0, 255, 0), (10, 10, 10), (1, 2, 3)


@pytest.fixture
def screen():
    pygame.display.init()
    surface = pygame.display.set_mode((1000, 1000))
    yield surface
    pygame.display.quit()


def pixel(surface, x, y):
    return tuple(surface.get_at((round(x), round(y))))[:3]


def test_letterboxed_rect_lands_where_it_should(screen):
    renderer = FrameRenderer(screen, (600, 400), background=BG, letterbox_color=BAR)
    assert renderer.scale == pytest.approx(1000 / 600)
    renderer.draw(r.Frame.of([r.Rect("box", 300, 200, 60, 40, RED)]))
    # canvas 600×400 → 1000×667 centred vertically: bars of ~167 px above and below
    x0, y0 = renderer.to_screen(300, 200)
    x1, y1 = renderer.to_screen(360, 240)
    assert y0 == pytest.approx(1000 / 600 * 200 + (1000 - 1000 * 400 / 600) / 2, abs=1)
    assert pixel(screen, (x0 + x1) / 2, (y0 + y1) / 2) == RED
    assert pixel(screen, x0 + 2, y0 + 2) == RED and pixel(screen, x1 - 2, y1 - 2) == RED
    assert pixel(screen, x0 - 3, y0 + 5) == BG and pixel(screen, x1 + 3, y1 - 5) == BG
    assert pixel(screen, 500, 50) == BAR and pixel(screen, 500, 950) == BAR
    assert pixel(screen, 500, 200) == BG


def test_depth_order_and_ties_keep_frame_order(screen):
    renderer = FrameRenderer(screen, (100, 100), background=BG)
    renderer.draw(r.Frame.of([r.Rect("top", 0, 0, 50, 50, RED, depth=2), r.Rect("under", 0, 0, 50, 50, BLUE, depth=1)]))
    assert pixel(screen, 100, 100) == RED
    renderer.draw(r.Frame.of([r.Rect("first", 0, 0, 50, 50, RED), r.Rect("second", 0, 0, 50, 50, GREEN)]))
    assert pixel(screen, 100, 100) == GREEN


def test_static_layer_is_drawn_once_per_episode(screen):
    renderer = FrameRenderer(screen, (100, 100), background=BG)
    court = r.Rect("court", 0, 50, 100, 50, BLUE, depth=-1, static=True)
    for step in range(10):
        renderer.draw(r.Frame((court, r.Circle("ball", 10 + step, 20, 5, RED)), (), 0, step))
    assert renderer.static_rebuilds == 1
    assert pixel(screen, 500, 900) == BLUE and pixel(screen, 500, 100) == BG
    renderer.draw(r.Frame((court, r.Circle("ball", 10, 20, 5, RED)), (), 1, 0))
    assert renderer.static_rebuilds == 2  # a new episode rebuilds it
    moved = r.Rect("court", 0, 0, 100, 50, BLUE, depth=-1, static=True)
    renderer.draw(r.Frame((moved,), (), 1, 1))
    assert renderer.static_rebuilds == 3 and pixel(screen, 500, 100) == BLUE  # changed statics are redrawn


def test_static_shape_above_a_moving_one_stays_on_top(screen):
    renderer = FrameRenderer(screen, (100, 100), background=BG)
    frame = r.Frame.of([r.Rect("roof", 0, 0, 100, 50, GREEN, depth=5, static=True), r.Circle("ball", 50, 25, 20, RED)])
    renderer.draw(frame)
    assert pixel(screen, 500, 250) == GREEN


def test_interpolation_between_consecutive_steps(screen):
    renderer = FrameRenderer(screen, (1000, 1000), background=BG)
    before = r.Frame((r.Circle("ball", 100, 500, 10, RED),), (), 0, 4)
    after = r.Frame((r.Circle("ball", 200, 500, 10, RED),), (), 0, 5)
    renderer.draw(after, before, 0.5)
    assert pixel(screen, 150, 500) == RED and pixel(screen, 200, 500) == BG
    renderer.draw(after, r.Frame(before.shapes, (), 0, 2), 0.5)  # not consecutive: no interpolation
    assert pixel(screen, 200, 500) == RED and pixel(screen, 150, 500) == BG
    far = r.Frame((r.Circle("ball", 900, 500, 10, RED),), (), 0, 5)
    renderer.draw(far, before, 0.5)  # a jump of most of the canvas snaps (a re-served ball)
    assert pixel(screen, 900, 500) == RED and pixel(screen, 500, 500) == BG


def test_half_disc_line_fill_and_alpha(screen):
    renderer = FrameRenderer(screen, (1000, 1000), background=(0, 0, 0))
    renderer.draw(r.Frame.of([
        r.Circle("slime", 200, 500, 100, BLUE, part="top"),
        r.Line("hill", ((500, 600), (1000, 600)), GREEN, 2, fill="below"),
        r.Rect("glass", 600, 100, 100, 100, (255, 255, 255, 128)),
    ]))
    assert pixel(screen, 200, 450) == BLUE and pixel(screen, 200, 550) == (0, 0, 0)
    assert pixel(screen, 750, 800) == GREEN and pixel(screen, 750, 500) == (0, 0, 0)
    grey = pixel(screen, 650, 150)
    assert all(120 <= c <= 136 for c in grey)


def test_text_and_hud(screen):
    renderer = FrameRenderer(screen, (1000, 1000), background=(0, 0, 0))
    renderer.draw(r.Frame.of([r.Text("t", 500, 500, "Hello", 40, (255, 255, 255), anchor="center")], {"Score": "3"}))
    region = screen.subsurface((400, 470, 200, 60))
    assert pygame.transform.average_color(region)[:3] != (0, 0, 0)
    hud = screen.subsurface((0, 0, 300, 30))
    assert max(pygame.transform.average_color(hud)[:3]) > 5


def test_sprites_from_an_atlas_and_rotation(screen, tmp_path):
    sheet = pygame.Surface((20, 10))
    sheet.fill(RED, (0, 0, 10, 10))
    sheet.fill(GREEN, (10, 0, 10, 10))
    sheet.fill(BLUE, (10, 0, 10, 5))  # the green frame's top half is blue: shows rotation
    pygame.image.save(sheet, str(tmp_path / "sheet.png"))
    (tmp_path / "sheet.json").write_text(json.dumps({
        "frames": {"red": {"frame": {"x": 0, "y": 0, "w": 10, "h": 10}},
                   "green": {"frame": {"x": 10, "y": 0, "w": 10, "h": 10}}},
        "meta": {"image": "sheet.png"}}))
    assets = Assets(tmp_path, atlases={"tiles": "sheet.json"})
    renderer = FrameRenderer(screen, (1000, 1000), assets, background=(0, 0, 0))
    renderer.draw(r.Frame.of([r.Sprite("a", 100, 100, 100, 100, "tiles", "red"),
                              r.Sprite("b", 400, 100, 100, 100, "tiles", "green"),
                              r.Sprite("c", 700, 100, 100, 100, "tiles", "green", angle=180)]))
    assert pixel(screen, 150, 150) == RED
    assert pixel(screen, 450, 120) == BLUE and pixel(screen, 450, 180) == GREEN
    assert pixel(screen, 750, 120) == GREEN and pixel(screen, 750, 180) == BLUE
    with pytest.raises(AssetError, match="unknown image 'nope'"):
        renderer.draw(r.Frame.of([r.Sprite("d", 0, 0, 10, 10, "nope")]))
    with pytest.raises(AssetError, match="no frame 'blue'"):
        renderer.draw(r.Frame.of([r.Sprite("d", 0, 0, 10, 10, "tiles", "blue")]))


def test_rgb_image(screen):
    pixels = bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])  # 2×2: red green / blue white
    renderer = FrameRenderer(screen, (200, 200), background=(0, 0, 0))
    renderer.draw(r.Frame.of([r.Image("img", 0, 0, 200, 200, pixels, (2, 2))]))
    assert pixel(screen, 250, 250) == RED and pixel(screen, 750, 250) == GREEN
    assert pixel(screen, 250, 750) == BLUE and pixel(screen, 750, 750) == (255, 255, 255)


def test_resize_recomputes_the_letterbox(screen):
    renderer = FrameRenderer(screen, (100, 100), background=BG, letterbox_color=BAR)
    other = pygame.Surface((400, 200))
    renderer.set_target(other)
    renderer.draw(r.Frame.of([r.Rect("r", 0, 0, 100, 100, RED)]))
    assert renderer.scale == 2 and pixel(other, 200, 100) == RED and pixel(other, 20, 100) == BAR


@pytest.mark.parametrize("size", [(1000, 1000), (300, 220), (1280, 400)])
def test_the_hud_has_its_own_strip_and_the_canvas_top_row_stays_visible(screen, size):
    from igym.renderers.draw import HUD_MAX, HUD_MIN

    MAGENTA = (255, 0, 255)
    target = pygame.Surface(size)
    renderer = FrameRenderer(target, (200, 100), background=GREEN, hud=True)
    hud = {"Episode": "1/3", "Time left": "1:00", "Score": "12"}
    renderer.draw(r.Frame.of([r.Rect("top", 0, 0, 200, 1, MAGENTA)], hud))
    view, strip = renderer.view, renderer.hud_rect
    assert strip.bottom == view.top and strip.width == view.width  # above the canvas, not over it
    assert HUD_MIN <= strip.height <= HUD_MAX
    top_row = {pixel(target, x, view.top) for x in range(view.left, view.right)}
    assert top_row == {MAGENTA}
    strip_pixels = {tuple(target.get_at((x, y)))[:3] for x in range(strip.left, strip.right)
                    for y in range(strip.top, strip.bottom)}
    assert any(min(c) > 150 for c in strip_pixels)  # the text is drawn in the strip


def test_a_window_sized_for_a_canvas_with_a_hud_shows_it_at_scale_one():
    from igym.renderers.window import fit_window

    size = fit_window((256, 256), hud=True)
    renderer = FrameRenderer(pygame.Surface(size), (256, 256), hud=True)
    assert renderer.scale == 1 and renderer.view.size == (256, 256) and renderer.view.bottom == size[1]


@pytest.mark.parametrize("picture", [(255, 255, 255), (0, 0, 0)], ids=["white", "black"])
def test_the_countdown_digit_reads_over_a_light_and_a_dark_picture(screen, picture):
    """The session's countdown (3, 2, 1) over the episode's first picture: the digit must stand out
    from that picture, white or black (it was white on white over Taxi). Readable = a mark at
    least half the digit's own size whose pixels differ strongly from the picture underneath."""
    from igym import Game
    from igym.session import Session
    from tests.toy_envs import LineRace

    game = Game(name="count", env=LineRace, canvas=(400, 300), fps=10, countdown_s=3,
                seats={"a": "random", "b": "random"}, render=lambda env: [r.Rect("picture", 0, 0, 400, 300, picture)])
    session = Session(game, "P", seed_source=lambda: 1)
    session.tick(0.0)
    digit = next(s for s in session.frame.shapes if isinstance(s, r.Text))
    assert digit.text == "3"
    renderer = FrameRenderer(screen, game.canvas)
    renderer.draw(session.frame._replace(shapes=tuple(s for s in session.frame.shapes if s is not digit)))
    under = pygame.surfarray.array3d(screen).astype(int)
    renderer.draw(session.frame)
    drawn = pygame.surfarray.array3d(screen).astype(int)
    glyph, _ = renderer._font(None, round(digit.size * renderer.scale)).render(digit.text, digit.color)
    glyph_pixels = int((pygame.surfarray.array_alpha(glyph) > 128).sum())
    luminance = [0.299, 0.587, 0.114]
    contrast = abs((drawn - under) @ luminance)
    assert glyph_pixels > 500
    assert int((contrast > 128).sum()) >= glyph_pixels / 2, (int((contrast > 128).sum()), glyph_pixels)
