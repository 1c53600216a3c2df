"""`ArrayDataset`: a whole image classification dataset held as four tensors.

Small datasets live on the training device as uint8 images (4x smaller than float32) and are
converted to floats in [0, 1] batch by batch by `DeviceLoader`; they are never normalised (the
BatchNorm after a model's first convolution absorbs the scale).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["ArrayDataset"]


@dataclass(frozen=True)
class ArrayDataset:
    """A train/test split of square images.

    Shapes: `train_x [N, C, H, W]` uint8 (0..255), `train_y [N]` int64 in `[0, num_classes)`;
    same for `test_x [M, C, H, W]`, `test_y [M]`, with `C == in_chans` and `H == W == img_size`.
    """

    name: str
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    in_chans: int
    img_size: int
    flip: bool  # is a horizontal flip label-preserving for this data (not for digits)
    crop_padding: int  # default zero padding of the random-crop augmentation

    def __post_init__(self) -> None:
        # Fail at construction, naming the dataset, rather than deep inside a training step.
        shape = (self.in_chans, self.img_size, self.img_size)
        for split, x, y in (("train", self.train_x, self.train_y), ("test", self.test_x, self.test_y)):
            if x.dtype != torch.uint8 or x.dim() != 4 or tuple(x.shape[1:]) != shape:
                raise ValueError(
                    f"{self.name}: {split}_x must be uint8 [N, {', '.join(map(str, shape))}], "
                    f"got {x.dtype} {list(x.shape)}"
                )
            if y.dtype != torch.int64 or y.dim() != 1 or len(y) != len(x):
                raise ValueError(
                    f"{self.name}: {split}_y must be int64 [{len(x)}], got {y.dtype} {list(y.shape)}"
                )
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
                raise ValueError(f"{self.name}: {split}_y has labels outside [0, {self.num_classes})")
        if self.crop_padding < 0:
            raise ValueError(f"{self.name}: crop_padding must be >= 0, got {self.crop_padding}")

    def to(self, device: torch.device | str) -> "ArrayDataset":
        """A copy with the four tensors on `device` (the original is unchanged)."""
        return dataclasses.replace(
            self,
            train_x=self.train_x.to(device),
            train_y=self.train_y.to(device),
            test_x=self.test_x.to(device),
            test_y=self.test_y.to(device),
        )

    def __repr__(self) -> str:
        return (
            f"ArrayDataset({self.name!r}, train={len(self.train_y)}, test={len(self.test_y)}, "
            f"classes={self.num_classes}, shape={self.in_chans}x{self.img_size}x{self.img_size}, "
            f"device={self.train_x.device})"
        )
