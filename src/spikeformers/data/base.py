"""`ArrayDataset`: a whole classification dataset held as four tensors, and the layouts it may have.

Small datasets live on the training device in compact storage (uint8 images and event counts are 4x
smaller than float32) and are converted to model-ready floats batch by batch by `DeviceLoader`; they
are never normalised (the BatchNorm after a model's first layer absorbs the scale).

A dataset's `layout` says what one sample is and how a batch of them is handed to a model:

    layout     stored sample             dtype            batch given to the model
    image      [C, H, W]                 uint8 0..255     [B, C, H, W] float in [0, 1]
    events     [T, 2, H, W] (counts)     uint8            [T, B, 2, H, W] float counts (time first)
    sequence   [L, F]                    uint8 or float   [B, L, F] float (uint8 scaled to [0, 1])
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Tuple

import torch
from torch import Tensor

__all__ = ["ArrayDataset", "Layout", "LAYOUTS"]


@dataclass(frozen=True)
class Layout:
    """How samples of one kind are stored and batched (see the module docstring)."""

    name: str
    sample_dims: int  # number of axes of one stored sample
    float_storage: bool  # may the samples be stored as float32 (else uint8 only)
    uint8_divisor: float  # divides uint8 storage when a batch is made (255: pixels; 1: counts)
    time_first: bool  # batches are yielded as [T, B, ...] (the stored [B, T, ...] transposed)
    spatial: bool  # the last two axes are image rows and columns (crops, flips, erasing, cutmix apply)

    def sample_shape(self, ds: "ArrayDataset") -> Tuple[int, ...]:
        if self.name == "image":
            return (ds.in_chans, ds.img_size, ds.img_size)
        if self.name == "events":
            return (ds.frames, ds.in_chans, ds.img_size, ds.img_size)
        return (ds.img_size, ds.in_chans)  # sequence: [L, F]


LAYOUTS: Dict[str, Layout] = {
    "image": Layout("image", 3, float_storage=False, uint8_divisor=255.0, time_first=False, spatial=True),
    "events": Layout("events", 4, float_storage=False, uint8_divisor=1.0, time_first=True, spatial=True),
    "sequence": Layout("sequence", 2, float_storage=True, uint8_divisor=255.0, time_first=False, spatial=False),
}


@dataclass(frozen=True)
class ArrayDataset:
    """A train/test split as tensors.

    Shapes (`layout` "image", the default): `train_x [N, C, H, W]` uint8 with `C == in_chans` and
    `H == W == img_size`; "events": `[N, T, 2, H, W]` uint8 counts (`in_chans == 2`, `frames == T`);
    "sequence": `[N, L, F]` uint8 or float32 with `L == img_size` (the sequence length) and
    `F == in_chans` (features per step, the input channels of a Conv1d). Labels `train_y [N]` int64
    in `[0, num_classes)`; the same for `test_x`, `test_y`.
    """

    name: str
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    in_chans: int  # image channels / event polarities (2) / sequence features F
    img_size: int  # image or event-frame side / sequence length L
    flip: bool  # is a horizontal flip label-preserving for this data (not for digits)
    crop_padding: int  # default zero padding of the random crop (a random shift of up to this many pixels)
    layout: str = "image"  # "image", "events" or "sequence" (see LAYOUTS)
    frames: int = 0  # events: time bins T per sample (0 for the other layouts)
    class_names: Tuple[str, ...] = ()  # one name per class where the source names them (a Hub folder keeps them)

    kind = "array"  # what a task checks it can train on
    task = "classify"  # the default task

    def __post_init__(self) -> None:
        # Fail at construction, naming the dataset, rather than deep inside a training step.
        if self.layout not in LAYOUTS:
            raise ValueError(f"{self.name}: unknown layout {self.layout!r}; valid layouts: {', '.join(LAYOUTS)}")
        spec = LAYOUTS[self.layout]
        if (self.layout == "events") != (self.frames > 0):
            raise ValueError(f"{self.name}: frames must be > 0 exactly for the events layout, got {self.frames}")
        shape = spec.sample_shape(self)
        dtypes = (torch.uint8, torch.float32) if spec.float_storage else (torch.uint8,)
        kinds = " or ".join(str(d).replace("torch.", "") for d in dtypes)
        for split, x, y in (("train", self.train_x, self.train_y), ("test", self.test_x, self.test_y)):
            if x.dtype not in dtypes or x.dim() != 1 + len(shape) or tuple(x.shape[1:]) != shape:
                raise ValueError(
                    f"{self.name}: {split}_x must be {kinds} [N, {', '.join(map(str, shape))}] ({self.layout}), "
                    f"got {x.dtype} {list(x.shape)}"
                )
            if y.dtype != torch.int64 or y.dim() != 1 or len(y) != len(x):
                raise ValueError(
                    f"{self.name}: {split}_y must be int64 [{len(x)}], got {y.dtype} {list(y.shape)}"
                )
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
                raise ValueError(f"{self.name}: {split}_y has labels outside [0, {self.num_classes})")
        if self.class_names and (len(self.class_names) != self.num_classes
                                 or not all(isinstance(n, str) for n in self.class_names)):
            raise ValueError(f"{self.name}: class_names must be {self.num_classes} strings, got {self.class_names!r}")
        if self.crop_padding < 0:
            raise ValueError(f"{self.name}: crop_padding must be >= 0, got {self.crop_padding}")

    @property
    def spec(self) -> Layout:
        return LAYOUTS[self.layout]

    def model_kwargs(self) -> Dict[str, Any]:
        """The `create_model` keywords that describe this data's input and classes."""
        if self.layout == "sequence":
            return dict(seq_len=self.img_size, in_features=self.in_chans, num_classes=self.num_classes)
        kw: Dict[str, Any] = dict(img_size=self.img_size, in_chans=self.in_chans, num_classes=self.num_classes)
        if self.layout == "events":
            kw["T"] = self.frames  # the frames are the time steps
        return kw

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
        shape = "x".join(map(str, self.spec.sample_shape(self)))
        return (
            f"ArrayDataset({self.name!r}, {self.layout}, train={len(self.train_y)}, test={len(self.test_y)}, "
            f"classes={self.num_classes}, sample={shape} {str(self.train_x.dtype).replace('torch.', '')}, "
            f"device={self.train_x.device})"
        )
