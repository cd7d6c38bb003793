"""Image datasets on the grid graph: scikit-learn's 8x8 digits (offline, ships with scikit-learn), a folder of
PNGs or a ``.npy`` array. Items are fixed-graph :class:`~graphdiff.state.GraphState` s built by
:class:`~graphdiff.adapters.ImageGrid`; with ``labels=True`` the class one-hot is the condition ``y``.

The datasets keep their images in memory (a few MB) and give the trainer what it reads from a graph dataset:
``len``, ``batch(indices)``, ``split(name)``, ``num_nodes()``, ``schema``, ``name``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..adapters import ImageGrid
from ..errors import DataError, MissingFileError
from ..state import GraphState

SPLITS = {"train": 0, "val": 1, "test": 2}


def split_labels(n: int, fractions=(0.8, 0.1, 0.1), seed: int = 0) -> np.ndarray:
    """``[n]`` int8 split of each item (0 train, 1 val, 2 test) from a seeded permutation: the first
    ``round(0.8 n)`` permuted items train, the next ``round(0.1 n)`` validate, the rest test."""
    perm = np.random.default_rng(seed).permutation(n)
    n_train, n_val = int(round(fractions[0] * n)), int(round(fractions[1] * n))
    out = np.empty(n, np.int8)
    out[perm[:n_train]], out[perm[n_train:n_train + n_val]], out[perm[n_train + n_val:]] = 0, 1, 2
    return out


class ImageDataset:
    """Images ``[G, C, H, W]`` (optionally labelled) as a dataset of grid-graph states.

    Args:
        images: ``[G, C, H, W]`` float array in ``value_range``.
        labels: ``[G]`` int class labels or ``None``.
        name: dataset name (recorded in checkpoints).
        value_range: ``(lo, hi)`` of the intensities.
        connectivity: 4 or 8 neighbours.
        use_labels: put the class one-hot in ``y`` (class-conditional training).
        split: ``"train"``, ``"val"``, ``"test"`` or ``None`` (all).
    """

    kind = "graph"

    def __init__(self, images, labels=None, *, name: str, value_range=(0.0, 1.0), connectivity: int = 4,
                 use_labels: bool = False, split: str | None = None, splits: np.ndarray | None = None,
                 num_classes: int | None = None):
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 3:
            images = images[:, None]
        if images.ndim != 4 or len(images) == 0:
            raise DataError(f"{name}: images must be a non-empty [G, C, H, W] array, got shape {list(images.shape)}")
        self.name, self.images = name, images
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        if use_labels and self.labels is None:
            raise DataError(f"{name}: labels=True but the images have no labels")
        self.num_classes = int(num_classes or (self.labels.max() + 1 if self.labels is not None else 0))
        self.use_labels = bool(use_labels)
        self.grid = ImageGrid(images.shape[2], images.shape[3], images.shape[1], connectivity, value_range)
        self.splits = split_labels(len(images)) if splits is None else np.asarray(splits, np.int8)
        features = tuple(f"class_{k}" for k in range(self.num_classes)) if self.use_labels else ()
        self.schema = self.grid.schema(len(images), graph_features=features)
        self.info = {"images": len(images), "height": self.grid.height, "width": self.grid.width,
                     "channels": self.grid.channels, "value_range": list(self.grid.value_range)}
        self._split = split
        self._idx = self._indices(split)

    def _indices(self, split):
        if split is None:
            return np.arange(len(self.images))
        if split not in SPLITS:
            raise DataError(f"{self.name}: unknown split {split!r}; choose from {list(SPLITS)}")
        return np.flatnonzero(self.splits == SPLITS[split])

    def split(self, split: str) -> "ImageDataset":
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._split, view._idx = split, self._indices(split)
        return view

    def split_sizes(self) -> dict[str, int]:
        return {k: int((self.splits == v).sum()) for k, v in SPLITS.items()}

    def __len__(self) -> int:
        return len(self._idx)

    def num_nodes(self) -> np.ndarray:
        return np.full(len(self), self.grid.n_nodes, dtype=np.int64)

    def num_edges(self) -> np.ndarray:
        """Undirected edges of each item's (fixed) grid graph."""
        return np.full(len(self), len(self.grid.edge_list()), dtype=np.int64)

    def arrays(self) -> tuple[np.ndarray, np.ndarray | None]:
        """This split's images ``[G, C, H, W]`` and labels (or ``None``)."""
        return self.images[self._idx], None if self.labels is None else self.labels[self._idx]

    def batch(self, indices, max_nodes: int | None = None) -> GraphState:
        idx = self._idx[np.asarray(indices, dtype=np.int64)]
        y = None
        if self.use_labels:
            y = torch.nn.functional.one_hot(torch.as_tensor(self.labels[idx]), self.num_classes).float()
        return self.grid.to_state(torch.from_numpy(self.images[idx]), y=y)

    def __getitem__(self, i: int) -> GraphState:
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.name}: index {i} out of range for {len(self)} images")
        return self.batch([i % len(self)])

    def loader(self, batch_size: int = 32, shuffle: bool = True, generator=None, drop_last: bool = False):
        return torch.utils.data.DataLoader(range(len(self)), batch_size=batch_size, shuffle=shuffle,
                                           generator=generator, drop_last=drop_last, collate_fn=self.batch)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, split={self._split!r}, images={len(self)})"


class Digits(ImageDataset):
    """scikit-learn's 8x8 handwritten digits (1,797 images, intensities 0..16, 10 classes; card ``digits``).

    Args:
        labels: class-conditional (``y`` = one-hot digit).
        connectivity: 4 or 8 neighbours.
    """

    name = "digits"

    def __init__(self, root=None, split: str | None = None, *, labels: bool = False, connectivity: int = 4,
                 download: bool = True, force_reload: bool = False):
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise MissingFileError("the digits dataset needs scikit-learn (pip install scikit-learn)") from None
        d = load_digits()
        super().__init__(d.images, d.target, name="digits", value_range=(0.0, 16.0), connectivity=connectivity,
                         use_labels=labels, split=split, num_classes=10)


def load_images(path, root=None, split: str | None = None, *, connectivity: int = 4,
                value_range=None, **options) -> ImageDataset:
    """Images from a ``.npy`` array (``[G, H, W]`` or ``[G, C, H, W]``) or a folder of ``.png`` files (all the
    same size and bit depth; grey, or RGB kept as 3 channels). Value range: the array's ``[min, max]`` (PNG: 0..255,
    16-bit grey PNG: 0..65535)."""
    if options:
        raise DataError(f"{path}: image datasets take no option {sorted(options)[0]!r}")
    p = Path(path)
    if p.is_dir():
        from PIL import Image

        files = sorted(f for f in p.iterdir() if f.suffix.lower() == ".png")
        if not files:
            raise DataError(f"{p}: no .png files in the folder")
        arrays, depths = [], set()
        for f in files:
            try:
                with Image.open(f) as im:
                    if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey: its own depth, not cut to 8 bits
                        a, depth = np.asarray(im).astype(np.float32), 65535.0
                    else:
                        a, depth = np.asarray(im.convert("L" if im.mode in ("L", "1", "P", "LA") else "RGB")), 255.0
            except OSError as exc:
                raise DataError(f"{f}: not a readable PNG ({exc})") from None
            if arrays and a.shape != arrays[0].shape:
                raise DataError(f"{f}: size {list(a.shape)} differs from {files[0].name} {list(arrays[0].shape)}")
            depths.add(depth)
            if len(depths) > 1:
                raise DataError(f"{f}: {'16' if depth > 255 else '8'}-bit, while {files[0].name} is "
                                f"{'16' if depth <= 255 else '8'}-bit; give the folder one bit depth")
            arrays.append(a)
        images = np.stack(arrays).astype(np.float32)
        images = images[:, None] if images.ndim == 3 else np.moveaxis(images, -1, 1)
        rng = value_range or (0.0, depths.pop())
    elif p.is_file():
        try:
            images = np.load(p, allow_pickle=False).astype(np.float32)
        except (ValueError, OSError) as exc:
            raise DataError(f"{p}: not a readable .npy array ({exc})") from None
        if images.ndim not in (3, 4):
            raise DataError(f"{p}: wants [G, H, W] or [G, C, H, W], got shape {list(images.shape)}")
        if not np.isfinite(images).all():
            raise DataError(f"{p}: the array holds NaN or infinite values")
        lo, hi = float(images.min()), float(images.max())
        rng = value_range or (lo, hi if hi > lo else lo + 1.0)
    else:
        raise MissingFileError(f"{p}: no such file or folder")
    return ImageDataset(images, name=p.stem, value_range=rng, connectivity=connectivity, split=split)


def is_image_source(name) -> bool:
    """A ``.npy`` file or a folder holding ``.png`` files."""
    p = Path(str(name))
    return str(name).lower().endswith(".npy") or (p.is_dir() and any(p.glob("*.png")))


__all__ = ["ImageDataset", "Digits", "load_images", "is_image_source", "split_labels"]
