"""MNIST-1D (Greydanus & Kobak 2020, https://arxiv.org/abs/2011.14439): 1-D signals of 10 digit shapes.

Generated offline by the `mnist1d` package's own generator (`mnist1d.data.make_dataset`) with its
default arguments: 5000 signals of length 40, split 4000 train / 1000 test, seed 42. Nothing is
downloaded. The arrays are cached under the cache folder (`paths.cache_dir()`) in a file named by a
hash of the generator's arguments and the package version, so only the first call takes seconds.

The signals are real-valued, standardised by the generator (mean 0, std 1): stored as float32
sequences `[N, 40, 1]`. Reference accuracies from the paper: CNN 94%, GRU 91%, MLP 68%.
"""
from __future__ import annotations

import random
from importlib import metadata
from typing import Dict

import numpy as np
import torch

from ..errors import DatasetError
from .base import ArrayDataset
from .paths import cache_dir, cache_key, cached_arrays
from .registry import DATASETS

__all__ = ["mnist1d", "generate_mnist1d"]


def generate_mnist1d() -> Dict[str, np.ndarray]:
    """Run the package's generator with its default arguments; the global RNG states are restored."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise DatasetError("mnist1d: the `mnist1d` package is not installed; "
                           "pip install 'spikeformers[data]' (or pip install mnist1d)") from None
    np_state, py_state = np.random.get_state(), random.getstate()
    try:  # make_dataset seeds NumPy's and Python's global generators: leave them as they were
        d = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {"x": d["x"].astype(np.float32), "y": d["y"].astype(np.int64),
            "x_test": d["x_test"].astype(np.float32), "y_test": d["y_test"].astype(np.int64)}


def _generator_identity() -> Dict[str, object]:
    """What the generated arrays depend on: the default arguments (less the unused URL) and the version."""
    try:
        from mnist1d.data import get_dataset_args
    except ImportError:
        raise DatasetError("mnist1d: the `mnist1d` package is not installed; "
                           "pip install 'spikeformers[data]' (or pip install mnist1d)") from None
    args = {k: v for k, v in get_dataset_args(as_dict=True).items() if k != "url"}
    try:
        version = metadata.version("mnist1d")
    except metadata.PackageNotFoundError:  # pragma: no cover - imported but not installed as a distribution
        version = "unknown"
    return {"args": args, "version": version}


@DATASETS.register("mnist1d", num_classes=10, seq_len=40, in_features=1, layout="sequence")
def mnist1d(*, cache: bool = True) -> ArrayDataset:
    """MNIST-1D: `[4000, 40, 1]` / `[1000, 40, 1]` float32, labels 0..9 (`cache=False`: always regenerate)."""
    ident = _generator_identity()
    path = cache_dir() / "mnist1d" / f"mnist1d-{cache_key(**ident)}.npz"
    d = cached_arrays(path, generate_mnist1d, use_cache=cache)
    return ArrayDataset(
        name="mnist1d",
        train_x=torch.from_numpy(d["x"])[:, :, None],  # [N, 40, 1]
        train_y=torch.from_numpy(d["y"]),
        test_x=torch.from_numpy(d["x_test"])[:, :, None],
        test_y=torch.from_numpy(d["y_test"]),
        num_classes=10,
        in_chans=1,
        img_size=d["x"].shape[1],
        flip=False,
        crop_padding=0,
        layout="sequence",
    )
