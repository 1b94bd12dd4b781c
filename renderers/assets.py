"""Images and sprite atlases a scene declares, loaded once and converted for fast blits.

An unconverted PNG blits ~15× slower than one converted to the display format, so every
image is ``convert_alpha()``-ed on first use (which needs a display mode to be set, hence
lazily). Atlases are TexturePacker JSON, "hash" (``{"frames": {name: {"frame": {...}}}}``)
or "array" (``{"frames": [{"filename": name, "frame": {...}}]}``) form; a frame is a
subsurface of the atlas image, so an atlas costs one image in memory.
"""

from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Mapping

import pygame

from igym.errors import IgymError


class AssetError(IgymError):
    """An image or atlas cannot be found or read."""


class Assets:
    """Named images and atlas frames for Sprite shapes."""

    def __init__(self, base_dir: str | Path = ".", images: Mapping[str, str] | None = None,
                 atlases: Mapping[str, str] | None = None) -> None:
        self.base_dir = Path(base_dir)
        self.image_paths = dict(images or {})
        self.atlas_paths = dict(atlases or {})
        self._images: dict[str, pygame.Surface] = {}
        self._frames: dict[str, dict[str, pygame.Rect]] = {}
        self._cache: dict[tuple[str, str | None], pygame.Surface] = {}

    @classmethod
    def from_surfaces(cls, surfaces: Mapping[str, pygame.Surface],
                      frames: Mapping[str, Mapping[str, tuple[int, int, int, int]]] | None = None) -> Assets:
        """Assets from surfaces already in memory (tests, benchmarks, generated art)."""
        assets = cls()
        assets._images.update(surfaces)
        for name, table in (frames or {}).items():
            assets._frames[name] = {f: pygame.Rect(r) for f, r in table.items()}
        return assets

    def names(self) -> list[str]:
        return sorted(set(self.image_paths) | set(self.atlas_paths) | set(self._images))

    def _load_image(self, path: Path) -> pygame.Surface:
        if not path.is_file():
            raise AssetError(f"image file not found: {path}")
        try:
            surface = pygame.image.load(str(path))
        except pygame.error as error:
            raise AssetError(f"cannot read image {path}: {error}") from None
        return surface.convert_alpha() if pygame.display.get_surface() is not None else surface

    def _load(self, name: str) -> None:
        if name in self.image_paths:
            self._images[name] = self._load_image(self.base_dir / self.image_paths[name])
        elif name in self.atlas_paths:
            path = self.base_dir / self.atlas_paths[name]
            if not path.is_file():
                raise AssetError(f"atlas file not found: {path}")
            try:
                data = json.loads(path.read_text())
                frames = data["frames"]
                image = data["meta"]["image"]
            except (ValueError, KeyError, TypeError) as error:
                raise AssetError(f"atlas {path} is not TexturePacker JSON with 'frames' and "
                                 f"'meta.image' ({error})") from None
            entries = frames.items() if isinstance(frames, dict) else ((f["filename"], f) for f in frames)
            self._frames[name] = {
                frame_name: pygame.Rect(e["frame"]["x"], e["frame"]["y"], e["frame"]["w"], e["frame"]["h"])
                for frame_name, e in entries}
            self._images[name] = self._load_image(path.parent / image)
        else:
            raise AssetError(f"unknown image {name!r}; the scene declares {self.names()} — add it to the "
                             f"scene's images= or atlases=")

    def surface(self, image: str, frame: str | None = None) -> pygame.Surface:
        """The surface of an image, or of one frame of an atlas."""
        key = (image, frame)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if image not in self._images:
            self._load(image)
        surface = self._images[image]
        if frame is not None:
            table = self._frames.get(image, {})
            if frame not in table:
                raise AssetError(f"atlas {image!r} has no frame {frame!r}; it has {sorted(table)[:20]}")
            surface = surface.subsurface(table[frame])
        self._cache[key] = surface
        return surface
