"""Draws renderers/web/favicon.png, the web page's icon (run once; the PNG is committed).

    SDL_VIDEODRIVER=dummy python renderers/web/make_favicon.py

A 32×32 picture: a dark rounded square, a green ground line, a net and a yellow ball.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame


def draw() -> pygame.Surface:
    icon = pygame.Surface((32, 32), pygame.SRCALPHA)
    icon.fill((0, 0, 0, 0))
    pygame.draw.rect(icon, (24, 34, 48), (0, 0, 32, 32), border_radius=6)
    pygame.draw.rect(icon, (70, 190, 120), (3, 24, 26, 3))  # ground
    pygame.draw.rect(icon, (235, 235, 235), (15, 14, 2, 10))  # net
    pygame.draw.circle(icon, (240, 200, 60), (9, 10), 4)  # ball
    pygame.draw.circle(icon, (120, 170, 255), (24, 24), 5, draw_top_right=True, draw_top_left=True)  # a player
    return icon


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("favicon.png")
    pygame.display.init()
    pygame.image.save(draw(), str(target))
    print(f"wrote {target} ({target.stat().st_size} bytes)")
