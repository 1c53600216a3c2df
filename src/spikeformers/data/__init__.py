"""Datasets as tensors, a registry of them, on-device batched augmentation and loading."""
from .augment import Augment, crop_at, random_crop, random_erasing, random_hflip
from .base import ArrayDataset
from .idx import read_idx
from .loader import DeviceLoader
from .registry import DATASETS, create_dataset, list_datasets

# Importing the builders registers them.
from . import digits as _digits  # noqa: F401  (registers "digits")
from . import fashion_mnist as _fashion_mnist  # noqa: F401  (registers "fashion_mnist")
from . import mnist as _mnist  # noqa: F401  (registers "mnist")

__all__ = [
    "ArrayDataset",
    "DATASETS",
    "create_dataset",
    "list_datasets",
    "read_idx",
    "Augment",
    "crop_at",
    "random_crop",
    "random_hflip",
    "random_erasing",
    "DeviceLoader",
]
