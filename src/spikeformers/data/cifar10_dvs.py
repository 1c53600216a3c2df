"""CIFAR10-DVS (Li et al. 2017, https://doi.org/10.3389/fnins.2017.00309): CIFAR-10 images moving on a
screen, recorded by a DVS128 (128 x 128). 10,000 recordings, 1,000 per class.

As released (figshare "CIFAR10-DVS_New"), one folder per class (`airplane`, `automobile`, `bird`,
`cat`, `deer`, `dog`, `frog`, `horse`, `ship`, `truck`; label = alphabetical index, the CIFAR-10
order) of jAER AEDAT 2.0 files `cifar10_<class>_<k>.aedat` (see `aedat.py`). There is no official
split: as in SpikingJelly, the first `train_ratio` (90%) of each class by file number train, the
rest test. Each recording becomes `frames` count frames (`frames.py`), stored as uint8
`[N, frames, 2, size, size]`; integrating 10,000 files takes minutes, so the result is cached
(`paths.cache_dir()`), keyed by the options and the files' sizes and dates.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch

from ..errors import ConfigError, DatasetError
from .aedat import read_aedat
from .base import ArrayDataset
from .frames import check_frame_options, events_to_frames
from .paths import cache_dir, cache_key, cached_arrays, candidate_folders, files_fingerprint, first_folder_with
from .registry import DATASETS

__all__ = ["cifar10_dvs", "CIFAR10_DVS_CLASSES"]

CIFAR10_DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SENSOR = 128


def _number(path: Path) -> Tuple[int, str]:
    m = re.search(r"(\d+)$", path.stem)
    return (int(m.group(1)) if m else -1, path.name)


def _split_files(folder: Path, train_ratio: float, max_per_class: Optional[int]) -> Tuple[List, List]:
    train, test = [], []
    for label, cls in enumerate(CIFAR10_DVS_CLASSES):
        files = sorted((folder / cls).glob("*.aedat"), key=_number)
        if not files:
            raise DatasetError(f"cifar10_dvs: no .aedat files in {folder / cls}")
        k = math.ceil(len(files) * train_ratio)  # as SpikingJelly's split_to_train_test_set
        tr, te = files[:k], files[k:]
        if max_per_class is not None:
            tr, te = tr[:max_per_class], te[:max_per_class]
        if not tr or not te:
            raise DatasetError(f"cifar10_dvs: {len(files)} file(s) in {folder / cls} leave an empty train or test "
                               f"split at train_ratio={train_ratio}")
        train += [(f, label) for f in tr]
        test += [(f, label) for f in te]
    return train, test


@DATASETS.register("cifar10_dvs", num_classes=10, img_size=128, in_chans=2, layout="events", frames=16)
def cifar10_dvs(
    root: Optional[str] = None,
    *,
    frames: int = 16,
    split_by: str = "number",
    size: int = 128,
    train_ratio: float = 0.9,
    max_per_class: Optional[int] = None,
    cache: bool = True,
) -> ArrayDataset:
    """CIFAR10-DVS as event frames `[N, frames, 2, size, size]` uint8 (9000 train / 1000 test).

    Args:
        frames: time bins per recording (Spikformer: 10 or 16).
        split_by: "number" (equal event counts per frame) or "time" (equal durations).
        size: frame side; must divide 128 (64: 2x2 binning).
        train_ratio: fraction of each class, by file number, used for training.
        max_per_class: keep at most this many train and test files per class (None: all).
        cache: keep the integrated frames in the cache folder.
    """
    check_frame_options("cifar10_dvs", frames, split_by, size, SENSOR)
    if not 0 < train_ratio < 1:
        raise ConfigError(f"cifar10_dvs: train_ratio must be in (0, 1), got {train_ratio}")
    folder = first_folder_with(
        "cifar10_dvs", candidate_folders(root, "cifar10-dvs", "~/datasets/cifar10-dvs"),
        lambda f: next((f"{c}/*.aedat" for c in CIFAR10_DVS_CLASSES if not any((f / c).glob("*.aedat"))), None),
        "download CIFAR10-DVS from https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671, unzip the ten "
        "class archives into one folder and pass data.root=FOLDER",
    )
    train, test = _split_files(folder, train_ratio, max_per_class)

    def build():
        out = {}
        for split, items in (("train", train), ("test", test)):
            out[f"{split}_x"] = np.stack([events_to_frames(read_aedat(f), frames, (SENSOR, SENSOR), split_by=split_by,
                                                           size=(size, size)) for f, _ in items])
            out[f"{split}_y"] = np.array([label for _, label in items], dtype=np.int64)
        return out

    key = cache_key(frames=frames, split_by=split_by, size=size, train_ratio=train_ratio, max_per_class=max_per_class,
                    files=files_fingerprint([f for f, _ in train + test]))
    d = cached_arrays(cache_dir() / "cifar10_dvs" / f"cifar10_dvs-{key}.npz", build, use_cache=cache)
    return ArrayDataset(
        name="cifar10_dvs",
        train_x=torch.from_numpy(d["train_x"]), train_y=torch.from_numpy(d["train_y"]),
        test_x=torch.from_numpy(d["test_x"]), test_y=torch.from_numpy(d["test_y"]),
        num_classes=10, in_chans=2, img_size=size, flip=True, crop_padding=size // 16,
        layout="events", frames=frames, class_names=CIFAR10_DVS_CLASSES,
    )
