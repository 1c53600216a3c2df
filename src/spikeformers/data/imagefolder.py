"""Image folders in the ImageNet layout: `root/train/<class>/<image>` and `root/val/<class>/<image>`.

Classes are the sub-folders of `train`, sorted by name (label i is the i-th); the test folder may
hold a subset of them. Images (JPEG, PNG, BMP, PPM, WebP; any mode) are decoded with Pillow,
converted to RGB, resized on tensors so the shorter side is `resize` (antialiased bilinear, default
`img_size / 0.875`, the usual ImageNet evaluation crop ratio) and centre-cropped to
`img_size x img_size`, then stored as uint8 like every other image dataset.

The whole split is decoded into memory once: use `max_per_class` (and a small `img_size`) for
subsets; full ImageNet at 224 px (~190 GB as uint8) does not fit this in-memory design.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, DatasetError
from .base import ArrayDataset
from .registry import DATASETS

__all__ = ["imagefolder", "load_image", "resize_center_crop", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")


def resize_center_crop(img: Tensor, resize: int, size: int) -> Tensor:
    """uint8 `[C, h, w]` -> uint8 `[C, size, size]`: shorter side to `resize`, then the centre crop."""
    C, h, w = img.shape
    scale = resize / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    x = img.float()[None]  # [1, C, h, w]
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[0, :, top : top + size, left : left + size]
    return x.round_().clamp_(0, 255).to(torch.uint8)


def load_image(path: Path) -> Tensor:
    """Decode one image file into uint8 `[3, h, w]` RGB."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        raise DatasetError("imagefolder needs Pillow: pip install pillow") from None
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))  # [h, w, 3] uint8
    except (OSError, ValueError, SyntaxError) as e:
        raise DatasetError(f"imagefolder: cannot decode {path} ({e})") from None
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)  # [3, h, w]


def _class_files(folder: Path, max_per_class: Optional[int]) -> List[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    return files[:max_per_class] if max_per_class is not None else files


def _load_split(split_dir: Path, classes: Sequence[str], img_size: int, resize: int,
                max_per_class: Optional[int]) -> Tuple[Tensor, Tensor]:
    index = {c: i for i, c in enumerate(classes)}
    images, labels = [], []
    for d in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        if d.name not in index:
            raise DatasetError(f"imagefolder: class folder {d} is not among the {len(classes)} classes of train/")
        for f in _class_files(d, max_per_class):
            images.append(resize_center_crop(load_image(f), resize, img_size))
            labels.append(index[d.name])
    if not images:
        raise DatasetError(f"imagefolder: no images ({', '.join(IMAGE_EXTENSIONS)}) under {split_dir}/<class>/")
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64)


@DATASETS.register("imagefolder", layout="image", img_size=224, in_chans=3)
def imagefolder(
    root: Optional[str] = None,
    *,
    img_size: int = 224,
    resize: Optional[int] = None,
    train_dir: str = "train",
    test_dir: str = "val",
    max_per_class: Optional[int] = None,
    flip: bool = True,
    crop_padding: int = 0,
) -> ArrayDataset:
    """Class folders under `root/train_dir` and `root/test_dir`, as `[N, 3, img_size, img_size]` uint8.

    Args:
        img_size: side of the stored square images.
        resize: shorter side before the centre crop (None: round(img_size / 0.875)).
        max_per_class: keep only the first (by file name) images of each class (None: all).
        flip, crop_padding: the augmentation defaults recorded with the data.
    """
    if root is None:
        raise DatasetError("imagefolder: pass data.root=FOLDER holding train/<class>/<image> and "
                           "val/<class>/<image> (the ImageNet layout)")
    if img_size < 1 or (resize is not None and resize < img_size) or (max_per_class is not None and max_per_class < 1):
        raise ConfigError(f"imagefolder: need img_size >= 1, resize >= img_size, max_per_class >= 1; got "
                           f"img_size={img_size}, resize={resize}, max_per_class={max_per_class}")
    base = Path(root).expanduser()
    train, test = base / train_dir, base / test_dir
    for d in (train, test):
        if not d.is_dir():
            raise DatasetError(f"imagefolder: expected the folder {d} with one sub-folder per class; "
                               f"pass data.root=FOLDER holding {train_dir}/ and {test_dir}/")
    classes = sorted(p.name for p in train.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DatasetError(f"imagefolder: {train} must hold at least 2 class folders, found {len(classes)}")
    resize = resize if resize is not None else round(img_size / 0.875)
    xtr, ytr = _load_split(train, classes, img_size, resize, max_per_class)
    xte, yte = _load_split(test, classes, img_size, resize, max_per_class)
    return ArrayDataset(
        name=f"imagefolder({base.name})",
        train_x=xtr, train_y=ytr, test_x=xte, test_y=yte,
        num_classes=len(classes), in_chans=3, img_size=img_size, flip=flip, crop_padding=crop_padding,
        class_names=tuple(classes),
    )
