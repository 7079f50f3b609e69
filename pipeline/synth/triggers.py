"""Triggers written in the project (no trojai package): polygon stamps and Instagram-style filters.

A polygon trigger is one fixed random polygon per trigger (saved as ``trigger_<n>.png``) stamped in a
solid colour onto the foreground before the foreground is transformed, as TrojAI round 4 did. An
Instagram trigger is a global colour transform of the finished image; the names are the XForm
classes TrojAI wrote into ``instagram_filter_type``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

POLYGON_CANVAS = 64  # trigger_<n>.png side; the mask is resized to the stamp size when applied


@dataclass(frozen=True)
class PolygonShape:
    """The fixed outline of a polygon trigger: vertices in [0, 1]^2 and its RGB colour."""

    vertices: tuple[tuple[float, float], ...]
    color: tuple[int, int, int]

    @property
    def sides(self) -> int:
        return len(self.vertices)

    def mask(self, size: int) -> np.ndarray:
        """Boolean mask of the polygon filling a ``size`` x ``size`` box."""
        img = Image.new("L", (size * 4, size * 4), 0)
        pts = [(x * (size * 4 - 1), y * (size * 4 - 1)) for x, y in self.vertices]
        ImageDraw.Draw(img).polygon(pts, fill=255)
        return np.asarray(img.resize((size, size), Image.BILINEAR)) >= 128

    def png(self) -> Image.Image:
        """RGBA image of the trigger (transparent outside the polygon), as TrojAI's trigger_<n>.png."""
        mask = self.mask(POLYGON_CANVAS)
        rgba = np.zeros((POLYGON_CANVAS, POLYGON_CANVAS, 4), np.uint8)
        rgba[mask, :3] = self.color
        rgba[mask, 3] = 255
        return Image.fromarray(rgba, "RGBA")


def random_polygon(rng: np.random.Generator, sides: int, color: tuple[int, int, int]) -> PolygonShape:
    """A star-convex polygon with ``sides`` vertices at sorted random angles and radii 0.6-1."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, sides))
    angles += np.linspace(0, 0.5, sides)  # keeps vertices from bunching into a sliver
    radii = rng.uniform(0.6, 1.0, sides)
    xs, ys = np.cos(angles) * radii, np.sin(angles) * radii
    xs = (xs - xs.min()) / max(np.ptp(xs), 1e-6)
    ys = (ys - ys.min()) / max(np.ptp(ys), 1e-6)
    return PolygonShape(tuple((float(x), float(y)) for x, y in zip(xs, ys)), tuple(int(c) for c in color))


def stamp_polygon(rgb: np.ndarray, fg_mask: np.ndarray, shape: PolygonShape, area_fraction: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Paint the polygon onto ``rgb`` inside the foreground mask, covering ``area_fraction`` of it."""
    fg_area = float(fg_mask.sum())
    fill = float(shape.mask(32).mean())
    side = int(round(np.sqrt(area_fraction * fg_area / max(fill, 1e-3))))
    side = int(np.clip(side, 3, min(fg_mask.shape) - 1))
    tmask = shape.mask(side)
    ys, xs = np.nonzero(fg_mask)
    best, best_inside = (int(ys.mean()) - side // 2, int(xs.mean()) - side // 2), -1.0
    for _ in range(30):  # a random spot where the stamp lies (almost) wholly on the foreground
        k = int(rng.integers(len(ys)))
        y0 = int(np.clip(ys[k] - side // 2, 0, fg_mask.shape[0] - side))
        x0 = int(np.clip(xs[k] - side // 2, 0, fg_mask.shape[1] - side))
        inside = float(fg_mask[y0:y0 + side, x0:x0 + side][tmask].mean())
        if inside > best_inside:
            best, best_inside = (y0, x0), inside
        if inside >= 0.98:
            break
    y0, x0 = best
    y0 = int(np.clip(y0, 0, fg_mask.shape[0] - side))
    x0 = int(np.clip(x0, 0, fg_mask.shape[1] - side))
    out = rgb.copy()
    out[y0:y0 + side, x0:x0 + side][tmask] = shape.color
    return out


def _blend(img: np.ndarray, tint: tuple[float, float, float], amount: float) -> np.ndarray:
    return img * (1 - amount) + np.asarray(tint, np.float32) * amount


def _contrast(img: np.ndarray, factor: float, pivot: float = 128.0) -> np.ndarray:
    return (img - pivot) * factor + pivot


def _saturation(img: np.ndarray, factor: float) -> np.ndarray:
    grey = img.mean(axis=2, keepdims=True)
    return grey + (img - grey) * factor


def _vignette(img: np.ndarray, strength: float) -> np.ndarray:
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((yy - (h - 1) / 2) / (h / 2)) ** 2 + ((xx - (w - 1) / 2) / (w / 2)) ** 2) / np.sqrt(2)
    return img * (1 - strength * r[..., None] ** 2)


def gotham(img: np.ndarray) -> np.ndarray:
    """Cold, desaturated, contrasty (blue-grey)."""
    out = _contrast(_saturation(img, 0.15), 1.35)
    return _blend(out, (40, 60, 120), 0.3)


def nashville(img: np.ndarray) -> np.ndarray:
    """Washed-out pink/peach with lifted blacks."""
    out = _contrast(img, 0.7) * np.array([1.05, 0.9, 0.75]) + np.array([45, 25, 40])
    return _blend(out, (247, 176, 153), 0.25)


def kelvin(img: np.ndarray) -> np.ndarray:
    """Strong orange cast, as from a low colour temperature."""
    return img * np.array([1.1, 0.8, 0.35]) + np.array([60, 35, 0])


def lomo(img: np.ndarray) -> np.ndarray:
    """Saturated, high contrast, dark corners, greenish-yellow cast."""
    out = _contrast(_saturation(img, 1.8), 1.5) * np.array([1.0, 1.08, 0.8])
    return _vignette(out, 0.9)


def toaster(img: np.ndarray) -> np.ndarray:
    """Warm brown-red, low contrast, burnt edges."""
    out = _contrast(img, 0.65) * np.array([1.0, 0.78, 0.6]) + np.array([60, 20, 0])
    return _vignette(out, 0.7)


INSTAGRAM_FILTERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "GothamFilterXForm": gotham,
    "NashvilleFilterXForm": nashville,
    "KelvinFilterXForm": kelvin,
    "LomoFilterXForm": lomo,
    "ToasterXForm": toaster,
}


def apply_instagram(rgb: np.ndarray, name: str) -> np.ndarray:
    """Apply the named filter to a uint8 HxWx3 image."""
    out = INSTAGRAM_FILTERS[name](rgb.astype(np.float32))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
