"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html), python version.

The official "python version" archives hold pickled dicts (written by Python 2's cPickle):
`cifar-10-batches-py/` has `data_batch_1` .. `data_batch_5` (50k train) and `test_batch` (10k), each
`{b"data": uint8 [10000, 3072], b"labels": [int], ...}`; `cifar-100-python/` has `train` and `test`
with `b"fine_labels"` (100 classes) and `b"coarse_labels"` (20 superclasses). A row of `data` is
the red, green and blue 32x32 planes in turn, so it reshapes to `[3, 32, 32]`.

Loading never executes code: the unpickler only builds plain containers and NumPy arrays and
refuses every other global a file names.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch

from ..errors import DatasetError
from .base import ArrayDataset
from .paths import candidate_folders, first_folder_with
from .registry import DATASETS

__all__ = ["read_cifar_batch", "load_cifar", "cifar10", "cifar100", "CIFAR10_CLASSES"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _numpy_reconstruct():
    try:  # NumPy >= 2 moved the module; pickles name the old one
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Resolves only the globals a pickled NumPy array needs; anything else is an error."""

    def find_class(self, module: str, name: str) -> Any:
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _numpy_reconstruct()
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def read_cifar_batch(path: str | Path) -> Dict[str, Any]:
    """One CIFAR python batch as a dict with str keys (`data`, `labels` or `fine_labels`, ...)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"CIFAR batch {path}: cannot read it ({e.strerror or e})") from None
    try:
        obj = _ArraysOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # any failure to parse is the file's fault, reported in one line
        raise DatasetError(f"CIFAR batch {path}: not a CIFAR python batch ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"CIFAR batch {path}: expected a pickled dict, got {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _images_and_labels(path: Path, label_key: str, num_classes: int):
    d = read_cifar_batch(path)
    if "data" not in d or label_key not in d:
        raise DatasetError(f"CIFAR batch {path}: missing key 'data' or {label_key!r} (has {', '.join(map(str, d))})")
    x = np.asarray(d["data"])
    y = np.asarray(d[label_key], dtype=np.int64)
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072 or len(y) != len(x):
        raise DatasetError(f"CIFAR batch {path}: data {x.dtype} {list(x.shape)} with {len(y)} labels; "
                           "expected uint8 [N, 3072] and N labels")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise DatasetError(f"CIFAR batch {path}: labels outside [0, {num_classes})")
    return x.reshape(-1, 3, 32, 32), y  # rows are R, G, B planes of 32x32


def load_cifar(name: str, root: Optional[str], *, variant: str, labels: str = "fine") -> ArrayDataset:
    """CIFAR-10 (`variant="10"`) or CIFAR-100 (`"100"`, `labels` "fine" or "coarse") from its batches."""
    if variant == "10":
        subdir, train, test, key, classes = "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], \
            ["test_batch"], "labels", 10
    else:
        if labels not in ("fine", "coarse"):
            raise DatasetError(f"{name}: labels must be 'fine' or 'coarse', got {labels!r}")
        subdir, train, test, key, classes = "cifar-100-python", ["train"], ["test"], f"{labels}_labels", \
            (100 if labels == "fine" else 20)
    archive = f"cifar-{variant}-python.tar.gz"
    folder = first_folder_with(
        name, candidate_folders(root, subdir, f"~/datasets/{subdir}"),
        lambda f: next((n for n in train + test if not (f / n).is_file()), None),
        f"download {archive} from https://www.cs.toronto.edu/~kriz/cifar.html, extract it and pass "
        f"data.root=.../{subdir} (or set SPIKEFORMERS_DATA to the folder holding {subdir})",
    )
    parts = {split: [_images_and_labels(folder / n, key, classes) for n in names]
             for split, names in (("train", train), ("test", test))}
    xtr, ytr = (np.concatenate(a) for a in zip(*parts["train"]))
    xte, yte = (np.concatenate(a) for a in zip(*parts["test"]))
    return ArrayDataset(
        name=name,
        train_x=torch.from_numpy(np.ascontiguousarray(xtr)),
        train_y=torch.from_numpy(ytr),
        test_x=torch.from_numpy(np.ascontiguousarray(xte)),
        test_y=torch.from_numpy(yte),
        num_classes=classes,
        in_chans=3,
        img_size=32,
        flip=True,
        crop_padding=4,  # the usual CIFAR recipe: pad 4, random 32x32 crop
        class_names=CIFAR10_CLASSES if variant == "10" else (),
    )


@DATASETS.register("cifar10", num_classes=10, img_size=32, in_chans=3, layout="image")
def cifar10(root: Optional[str] = None) -> ArrayDataset:
    """CIFAR-10: `[50000, 3, 32, 32]` / `[10000, 3, 32, 32]` uint8, labels 0..9."""
    return load_cifar("cifar10", root, variant="10")


@DATASETS.register("cifar100", num_classes=100, img_size=32, in_chans=3, layout="image")
def cifar100(root: Optional[str] = None, *, labels: str = "fine") -> ArrayDataset:
    """CIFAR-100: `[50000, 3, 32, 32]` / `[10000, 3, 32, 32]` uint8; 100 fine or 20 coarse classes."""
    return load_cifar("cifar100", root, variant="100", labels=labels)
