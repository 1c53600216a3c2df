"""Fashion-MNIST (Xiao et al. 2017, https://arxiv.org/abs/1708.07747): 28x28 grey clothing images.

Read from the four official IDX files (60k train / 10k test), gzipped or not. Debian's package
`dataset-fashion-mnist` installs them in `/usr/share/datasets/fashion-mnist`; elsewhere pass
`data.root=FOLDER` or set `SPIKEFORMERS_DATA` (searched as `$SPIKEFORMERS_DATA/fashion-mnist`).
"""
from __future__ import annotations

from typing import Optional

from .base import ArrayDataset
from .idx import candidate_folders, load_idx_image_dataset
from .registry import DATASETS

__all__ = ["fashion_mnist", "FASHION_MNIST_ROOT", "FASHION_CLASSES"]

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


@DATASETS.register("fashion_mnist", num_classes=10, img_size=28, in_chans=1, layout="image")
def fashion_mnist(root: Optional[str] = None) -> ArrayDataset:
    """Fashion-MNIST: `[60000, 1, 28, 28]` / `[10000, 1, 28, 28]` uint8, labels 0..9."""
    return load_idx_image_dataset(
        "fashion_mnist",
        candidate_folders(root, "fashion-mnist", FASHION_MNIST_ROOT),
        num_classes=10,
        flip=True,  # clothes stay the same class when mirrored
        crop_padding=2,
        class_names=FASHION_CLASSES,
        hint="install it with `apt-get install dataset-fashion-mnist` or pass data.root=...",
    )
