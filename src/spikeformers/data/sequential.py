"""Sequential image tasks: an image read as a sequence, one step at a time.

- `smnist`: MNIST pixel by pixel in raster order, `[N, 784, 1]` (Le et al. 2015, arXiv 1504.00941).
- `psmnist`: the same with the 784 steps in one fixed random order drawn from `perm_seed`.
- `scifar`: CIFAR-10 pixel by pixel, `[N, 1024, 3]` (RGB per step; STEP's setup), or row by row,
  `[N, 32, 96]` (each step one image row, its 32 pixels' R, G, B interleaved).

The sequences keep the source's uint8 storage; `DeviceLoader` scales them to [0, 1]. The source
files are found as for `mnist` and `cifar10` (`data.root` is passed on to them).
"""
from __future__ import annotations

from typing import Optional

import torch

from ..errors import ConfigError
from .base import ArrayDataset
from .cifar import cifar10
from .mnist import mnist
from .registry import DATASETS

__all__ = ["smnist", "psmnist", "scifar", "as_sequence", "fixed_permutation"]


def fixed_permutation(n: int, seed: int) -> torch.Tensor:
    """The permutation of `range(n)` that `seed` fixes (CPU generator: the same on every machine)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def as_sequence(ds: ArrayDataset, name: str, x_train: torch.Tensor, x_test: torch.Tensor) -> ArrayDataset:
    """A sequence-layout dataset `[N, L, F]` with `ds`'s labels."""
    return ArrayDataset(
        name=name,
        train_x=x_train.contiguous(),
        train_y=ds.train_y,
        test_x=x_test.contiguous(),
        test_y=ds.test_y,
        num_classes=ds.num_classes,
        in_chans=x_train.shape[2],
        img_size=x_train.shape[1],
        flip=False,
        crop_padding=0,
        layout="sequence",
    )


def _pixels(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, H*W, C] in raster order."""
    return x.permute(0, 2, 3, 1).flatten(1, 2)


@DATASETS.register("smnist", num_classes=10, seq_len=784, in_features=1, layout="sequence")
def smnist(root: Optional[str] = None) -> ArrayDataset:
    """Sequential MNIST: `[60000, 784, 1]` / `[10000, 784, 1]` uint8."""
    ds = mnist(root)
    return as_sequence(ds, "smnist", _pixels(ds.train_x), _pixels(ds.test_x))


@DATASETS.register("psmnist", num_classes=10, seq_len=784, in_features=1, layout="sequence")
def psmnist(root: Optional[str] = None, *, perm_seed: int = 0) -> ArrayDataset:
    """Permuted sequential MNIST: smnist's steps in the fixed order `fixed_permutation(784, perm_seed)`."""
    ds = mnist(root)
    perm = fixed_permutation(ds.img_size * ds.img_size, perm_seed)
    return as_sequence(ds, "psmnist", _pixels(ds.train_x)[:, perm], _pixels(ds.test_x)[:, perm])


@DATASETS.register("scifar", num_classes=10, seq_len=1024, in_features=3, layout="sequence")
def scifar(root: Optional[str] = None, *, mode: str = "pixel") -> ArrayDataset:
    """Sequential CIFAR-10: `mode="pixel"` `[N, 1024, 3]`, or `mode="row"` `[N, 32, 96]` (uint8)."""
    if mode not in ("pixel", "row"):
        raise ConfigError(f"scifar: mode must be 'pixel' or 'row', got {mode!r}")
    ds = cifar10(root)

    def seq(x: torch.Tensor) -> torch.Tensor:
        p = x.permute(0, 2, 3, 1)  # [N, 32, 32, 3]
        return p.flatten(1, 2) if mode == "pixel" else p.flatten(2, 3)  # [N, 1024, 3] or [N, 32, 96]

    return as_sequence(ds, f"scifar_{mode}", seq(ds.train_x), seq(ds.test_x))
