"""MNIST (LeCun et al. 1998, http://yann.lecun.com/exdb/mnist/): 28x28 grey handwritten digits.

Read from the four official IDX files (60k train / 10k test), gzipped or not, in
`/usr/share/datasets/mnist` by default; elsewhere pass `data.root=FOLDER` or set
`SPIKEFORMERS_DATA` (searched as `$SPIKEFORMERS_DATA/mnist`).
"""
from __future__ import annotations

from typing import Optional

from .base import ArrayDataset
from .idx import candidate_folders, load_idx_image_dataset
from .registry import DATASETS

__all__ = ["mnist", "MNIST_ROOT"]

MNIST_ROOT = "/usr/share/datasets/mnist"


@DATASETS.register("mnist", num_classes=10, img_size=28, in_chans=1, layout="image")
def mnist(root: Optional[str] = None) -> ArrayDataset:
    """MNIST: `[60000, 1, 28, 28]` / `[10000, 1, 28, 28]` uint8, labels 0..9."""
    return load_idx_image_dataset(
        "mnist",
        candidate_folders(root, "mnist", MNIST_ROOT),
        num_classes=10,
        flip=False,  # mirrored digits are not digits
        class_names=tuple(str(d) for d in range(10)),
        crop_padding=2,
        hint="download the four IDX files from http://yann.lecun.com/exdb/mnist/ into it "
        "or pass data.root=...",
    )
