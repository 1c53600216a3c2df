"""scikit-learn's 8x8 handwritten digits (1797 images, 10 classes), shipped with scikit-learn.

Fixed protocol: a stratified 80/20 split with `random_state=0` -> 1437 train / 360 test images.
Pixel values 0..16 are rescaled to 0..255 as `round(v * 255 / 16)`.
"""
from __future__ import annotations

import numpy as np
import torch

from .base import ArrayDataset
from .registry import DATASETS

__all__ = ["digits"]


@DATASETS.register("digits", num_classes=10, img_size=8, in_chans=1, layout="image")
def digits() -> ArrayDataset:
    """The sklearn digits dataset: `[1437, 1, 8, 8]` / `[360, 1, 8, 8]` uint8, labels 0..9."""
    from sklearn.datasets import load_digits  # imported lazily: sklearn is slow to import
    from sklearn.model_selection import train_test_split

    raw = load_digits()
    images = raw.images  # [1797, 8, 8] float64, integer values 0..16
    labels = raw.target.astype(np.int64)
    # Exact rescaling through a lookup table (v*255/16 has a .5 only at v=8 -> 128 either way).
    lut = np.floor(np.arange(17) * 255 / 16 + 0.5).astype(np.uint8)
    x = lut[images.astype(np.int64)][:, None]  # [1797, 1, 8, 8]
    xtr, xte, ytr, yte = train_test_split(x, labels, test_size=0.2, stratify=labels, random_state=0)
    return ArrayDataset(
        name="digits",
        train_x=torch.from_numpy(np.ascontiguousarray(xtr)),
        train_y=torch.from_numpy(np.ascontiguousarray(ytr)),
        test_x=torch.from_numpy(np.ascontiguousarray(xte)),
        test_y=torch.from_numpy(np.ascontiguousarray(yte)),
        num_classes=10,
        in_chans=1,
        img_size=8,
        flip=False,  # mirrored digits are not digits
        crop_padding=1,
        class_names=tuple(str(d) for d in range(10)),
    )
