"""TrojAI-style "traffic sign" classes: shape x colour x inner symbol, pasted onto real photo crops.

TrojAI rounds 1-4 composed synthetic sign foregrounds onto real backgrounds with random scale,
rotation, position, lighting, blur and noise. The backgrounds here are the photos that ship inside
scikit-image (``skimage.data``), so nothing is downloaded.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipeline.synth.triggers import PolygonShape, stamp_polygon

CANVAS = 96  # foregrounds are drawn at this size, then scaled down (anti-aliased)
BACKGROUND_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "brick", "grass", "gravel", "coins",
                     "hubble_deep_field", "immunohistochemistry", "retina", "moon", "clock", "stereo_motorcycle",
                     "page", "text")

# name -> polygon vertices on the unit circle (angle offset, sides); circle is drawn as an ellipse
SHAPES: dict[str, tuple[float, int]] = {
    "circle": (0.0, 0), "triangle": (-90.0, 3), "inverted_triangle": (90.0, 3), "square": (45.0, 4),
    "diamond": (0.0, 4), "pentagon": (-90.0, 5), "hexagon": (0.0, 6), "octagon": (22.5, 8),
}
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (200, 25, 30), "blue": (25, 70, 200), "yellow": (240, 205, 20), "green": (20, 140, 60),
    "orange": (245, 120, 15), "purple": (120, 40, 160), "white": (235, 235, 235), "black": (25, 25, 25),
}
SYMBOLS = ("none", "bar", "vbar", "cross", "dot", "ring", "arrow", "chevron")


@dataclass(frozen=True)
class SignClass:
    """One class: the foreground that defines it."""

    shape: str
    color: str
    symbol: str

    def describe(self) -> str:
        return f"{self.color} {self.shape} {self.symbol}"


def sample_classes(num_classes: int, rng: np.random.Generator) -> list[SignClass]:
    """Distinct sign classes that differ from each other in at least two of shape/colour/symbol."""
    combos = list(product(SHAPES, COLORS, SYMBOLS))
    order = rng.permutation(len(combos))
    chosen: list[SignClass] = []
    for i in order:
        cand = SignClass(*combos[int(i)])
        if all(sum(a != b for a, b in zip((cand.shape, cand.color, cand.symbol), (c.shape, c.color, c.symbol))) >= 2
               for c in chosen):
            chosen.append(cand)
        if len(chosen) == num_classes:
            return chosen
    raise ValueError(f"cannot make {num_classes} distinct sign classes")


def _outline(shape: str, margin: float) -> list[tuple[float, float]] | None:
    offset, sides = SHAPES[shape]
    if sides == 0:
        return None
    c, r = CANVAS / 2, CANVAS / 2 - margin
    angles = np.deg2rad(offset + np.arange(sides) * 360.0 / sides)
    return [(c + r * np.cos(a), c + r * np.sin(a)) for a in angles]


def _symbol_color(color: str) -> tuple[int, int, int]:
    return (20, 20, 20) if color in ("yellow", "white", "orange") else (245, 245, 245)


def _draw_symbol(draw: ImageDraw.ImageDraw, symbol: str, ink: tuple[int, int, int]) -> None:
    c, s = CANVAS / 2, CANVAS * 0.16
    w = max(3, CANVAS // 14)
    strokes = {
        "bar": lambda: draw.rectangle([c - 1.6 * s, c - w, c + 1.6 * s, c + w], fill=ink),
        "vbar": lambda: draw.rectangle([c - w, c - 1.6 * s, c + w, c + 1.6 * s], fill=ink),
        "cross": lambda: (draw.rectangle([c - 1.5 * s, c - w, c + 1.5 * s, c + w], fill=ink),
                          draw.rectangle([c - w, c - 1.5 * s, c + w, c + 1.5 * s], fill=ink)),
        "dot": lambda: draw.ellipse([c - s, c - s, c + s, c + s], fill=ink),
        "ring": lambda: draw.ellipse([c - 1.5 * s, c - 1.5 * s, c + 1.5 * s, c + 1.5 * s], outline=ink, width=w),
        "arrow": lambda: (draw.rectangle([c - 1.5 * s, c - w, c + 0.3 * s, c + w], fill=ink),
                          draw.polygon([(c + 0.2 * s, c - 1.1 * s), (c + 1.6 * s, c), (c + 0.2 * s, c + 1.1 * s)],
                                       fill=ink)),
        "chevron": lambda: draw.line([(c - 1.2 * s, c - 1.2 * s), (c + 0.6 * s, c), (c - 1.2 * s, c + 1.2 * s)],
                                     fill=ink, width=2 * w),
    }
    stroke = strokes.get(symbol)
    if stroke is not None:
        stroke()


def draw_foreground(cls: SignClass) -> tuple[np.ndarray, np.ndarray]:
    """(RGB, alpha mask) of the sign on a ``CANVAS`` square: coloured body, white rim, symbol."""
    img = Image.new("RGB", (CANVAS, CANVAS), (0, 0, 0))
    alpha = Image.new("L", (CANVAS, CANVAS), 0)
    draw, adraw = ImageDraw.Draw(img), ImageDraw.Draw(alpha)
    rim = (250, 250, 250) if cls.color != "white" else (200, 30, 30)
    for margin, colour, target in ((2, rim, draw), (2, 255, adraw), (7, COLORS[cls.color], draw)):
        pts = _outline(cls.shape, margin)
        if pts is None:
            target.ellipse([margin, margin, CANVAS - margin, CANVAS - margin], fill=colour)
        else:
            target.polygon(pts, fill=colour)
    _draw_symbol(draw, cls.symbol, _symbol_color(cls.color))
    return np.asarray(img).copy(), np.asarray(alpha) >= 128


def load_backgrounds() -> list[np.ndarray]:
    """The skimage sample photos as RGB uint8 arrays (greyscale ones repeated to 3 channels)."""
    import skimage.data as sd

    photos = []
    for name in BACKGROUND_PHOTOS:
        arr = getattr(sd, name)()
        arr = np.asarray(arr[0] if isinstance(arr, tuple) else arr)  # stereo_motorcycle: (left, right, disp)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        photos.append(np.ascontiguousarray(arr[..., :3]).astype(np.uint8))
    return photos


@dataclass(frozen=True)
class SignVariation:
    """Ranges of the TrojAI-like random variation applied to every rendered image."""

    fg_fraction: tuple[float, float] = (0.5, 0.8)  # sign width as a fraction of the image width
    rotation_deg: float = 15.0
    brightness: tuple[float, float] = (0.7, 1.25)
    blur_radius: tuple[float, float] = (0.0, 0.6)  # in output pixels
    noise_sigma: tuple[float, float] = (0.0, 6.0)  # on the 0-255 scale


class SignWorld:
    """Renders images of one model's sign classes (its own foregrounds) on photo crops."""

    def __init__(self, classes: list[SignClass], backgrounds: list[np.ndarray], size: int,
                 variation: SignVariation = SignVariation()):
        self.classes, self.backgrounds, self.size, self.var = classes, backgrounds, size, variation
        self.foregrounds = [draw_foreground(c) for c in classes]

    def use_split(self, split: str) -> None:
        """Every render is a fresh random composition, so train and test need no separate pools."""

    def _background(self, rng: np.random.Generator) -> Image.Image:
        photo = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        h, w = photo.shape[:2]
        side = int(rng.integers(min(h, w) // 4, min(h, w) + 1))
        y, x = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
        return Image.fromarray(photo[y:y + side, x:x + side]).resize((self.size, self.size), Image.BILINEAR)

    def render(self, label: int, rng: np.random.Generator, polygon: PolygonShape | None = None,
               polygon_area: float = 0.0) -> np.ndarray:
        """One RGB uint8 image of class ``label``; with ``polygon``, the trigger is on the sign."""
        rgb, mask = self.foregrounds[label]
        if polygon is not None:
            rgb = stamp_polygon(rgb, mask, polygon, polygon_area, rng)
        fg = Image.fromarray(rgb).convert("RGBA")
        fg.putalpha(Image.fromarray(mask.astype(np.uint8) * 255))
        fg = fg.rotate(float(rng.uniform(-self.var.rotation_deg, self.var.rotation_deg)), Image.BILINEAR)
        side = max(6, int(round(self.size * rng.uniform(*self.var.fg_fraction))))
        fg = fg.resize((side, side), Image.LANCZOS)
        bg = self._background(rng).convert("RGBA")
        pos = (int(rng.integers(self.size - side + 1)), int(rng.integers(self.size - side + 1)))
        bg.alpha_composite(fg, pos)
        img = bg.convert("RGB")
        radius = float(rng.uniform(*self.var.blur_radius))
        if radius > 0.15:
            img = img.filter(ImageFilter.GaussianBlur(radius))
        out = np.asarray(img, np.float32) * float(rng.uniform(*self.var.brightness))
        out += rng.normal(0.0, float(rng.uniform(*self.var.noise_sigma)), out.shape)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
