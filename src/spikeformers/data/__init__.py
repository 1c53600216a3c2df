"""Datasets as tensors, a registry of them, on-device batched augmentation, mixing and loading."""
from .aedat import Events, read_aedat
from .augment import Augment, crop_at, random_crop, random_erasing, random_hflip, random_shift, shift_at
from .base import LAYOUTS, ArrayDataset, Layout
from .cifar import read_cifar_batch
from .frames import events_to_frames
from .idx import read_idx
from .loader import DeviceLoader
from .mix import BatchMix
from .registry import DATASETS, create_dataset, dataset_info, list_datasets

# Importing the builders registers them.
from . import digits as _digits  # noqa: F401  (registers "digits")
from . import fashion_mnist as _fashion_mnist  # noqa: F401  (registers "fashion_mnist")
from . import mnist as _mnist  # noqa: F401  (registers "mnist")
from . import cifar as _cifar  # noqa: F401  (registers "cifar10", "cifar100")
from . import imagefolder as _imagefolder  # noqa: F401  (registers "imagefolder")
from . import sequential as _sequential  # noqa: F401  (registers "smnist", "psmnist", "scifar")
from . import mnist1d as _mnist1d  # noqa: F401  (registers "mnist1d")
from . import cifar10_dvs as _cifar10_dvs  # noqa: F401  (registers "cifar10_dvs")
from . import dvs_gesture as _dvs_gesture  # noqa: F401  (registers "dvs128_gesture")
from . import emulated_dvs as _emulated_dvs  # noqa: F401  (registers "emulated_dvs")
from . import text as _text  # noqa: F401  (registers "text", "gcide", "enwik8")
from .text import ByteTokenizer, TokenDataset
from . import scenes as _scenes  # noqa: F401  (registers "fashion_mnist_scenes")
from .scenes import SceneDataset
from . import dense_formats as _dense_formats  # noqa: F401  (registers "coco", "voc", "label_maps")
from .scene_loader import SceneLoader
from .windows import WindowLoader
from .transform import InputTransform

__all__ = [
    "InputTransform",
    "ArrayDataset",
    "TokenDataset",
    "SceneDataset",
    "SceneLoader",
    "ByteTokenizer",
    "WindowLoader",
    "Layout",
    "LAYOUTS",
    "DATASETS",
    "create_dataset",
    "list_datasets",
    "dataset_info",
    "read_idx",
    "read_cifar_batch",
    "read_aedat",
    "Events",
    "events_to_frames",
    "Augment",
    "crop_at",
    "random_crop",
    "shift_at",
    "random_shift",
    "random_hflip",
    "random_erasing",
    "BatchMix",
    "DeviceLoader",
]
