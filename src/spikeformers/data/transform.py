"""`InputTransform`: raw samples in, the batch a trained model was trained on out.

A run's data are stored compactly and turned into model input by `DeviceLoader` (see `base.py`):
pixels become floats in [0, 1], event counts stay counts, and event frames go time-first. The same
rule, kept with a trained model, lets it take raw inputs:

    layout    one sample (a batch adds a leading B)      values accepted
    image     [C, H, W], or [H, W] when C = 1            uint8 0..255, float 0..255, or float in [0, 1]
    events    [T, 2, H, W] event counts per time bin      counts (never rescaled)
    sequence  [L, F], or [L] when F = 1                   uint8 0..255, or floats as trained

Image floats are read as 0..255 when their largest value exceeds 1 (`value_range="auto"`); pass
`value_range="0-1"` or `"0-255"` to say it instead. Other integer types count as floats. Shapes must
match the trained size exactly. Samples must be real numbers and finite: strings, objects, NaN and
infinities are refused (a model would turn them into confident-looking classes).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict

import numpy as np
import torch
from torch import Tensor

from .base import LAYOUTS

__all__ = ["InputTransform"]

_RANGES = ("auto", "0-1", "0-255")


@dataclass(frozen=True)
class InputTransform:
    layout: str  # "image", "events" or "sequence"
    in_chans: int  # channels / polarities (2) / features per step
    img_size: int  # side of the image or frame / sequence length
    frames: int = 0  # events: time bins

    @classmethod
    def of(cls, dataset: Any) -> "InputTransform":
        return cls(dataset.layout, dataset.in_chans, dataset.img_size, dataset.frames)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> "InputTransform":
        """Inverse of `to_dict` (as a Hub folder's config.json keeps it), checked: ValueError naming what is wrong."""
        names = ("layout", "in_chans", "img_size", "frames")
        if not isinstance(d, dict) or set(d) - set(names) or not {"layout", "in_chans", "img_size"} <= set(d):
            raise ValueError(f"an input transform is a mapping of {', '.join(names)}, got {d!r}")
        sizes = [d["in_chans"], d["img_size"], d.get("frames", 0)]
        if d["layout"] not in LAYOUTS or any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in sizes) \
                or min(sizes[:2]) < 1 or (d["layout"] == "events") != (sizes[2] > 0):
            raise ValueError(f"not a valid input transform: {d!r} (layouts: {', '.join(LAYOUTS)}; sizes >= 1; "
                             f"frames > 0 exactly for events)")
        return cls(d["layout"], d["in_chans"], d["img_size"], d.get("frames", 0))

    @property
    def sample_shape(self) -> tuple:
        if self.layout == "image":
            return (self.in_chans, self.img_size, self.img_size)
        if self.layout == "events":
            return (self.frames, self.in_chans, self.img_size, self.img_size)
        return (self.img_size, self.in_chans)

    def __call__(self, x: Any, value_range: str = "auto", device: Any = None) -> Tensor:
        """One sample or a batch (numpy or torch) -> the model's input batch (float32, time-first for events)."""
        if value_range not in _RANGES:
            raise ValueError(f"value_range must be one of {', '.join(_RANGES)}, got {value_range!r}")
        if not isinstance(x, Tensor):
            x = np.array(x)  # a copy: read-only arrays too
            if x.dtype.kind not in "biuf":  # strings, objects, dates: torch.from_numpy's TypeError lists dtypes
                raise ValueError(f"input dtype {x.dtype} holds no numbers: give an array of real numbers")
        t = x if isinstance(x, Tensor) else torch.from_numpy(x)
        if t.dtype == torch.bool or t.is_complex():
            raise ValueError(f"input dtype {t.dtype} is not a real number type")
        if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
            raise ValueError("input holds NaN or infinite values")
        want = self.sample_shape
        if self.layout == "image" and self.in_chans == 1 and t.dim() in (2, 3) and tuple(t.shape[-2:]) == want[1:] \
                and (t.dim() == 2 or t.shape[0] != 1):
            t = t.unsqueeze(-3)  # [H, W] or [B, H, W] of a one-channel model
        if self.layout == "sequence" and self.in_chans == 1 and t.dim() in (1, 2) and t.shape[-1] == want[0]:
            t = t.unsqueeze(-1)  # [L] or [B, L] of a one-feature model
        if t.dim() == len(want):
            t = t.unsqueeze(0)
        if t.dim() != len(want) + 1 or tuple(t.shape[1:]) != want:
            dims = ", ".join(map(str, want))
            raise ValueError(f"input of shape {list(t.shape)} does not fit this model: it takes one {self.layout} "
                             f"sample [{dims}] or a batch [B, {dims}]")
        if t.dtype == torch.uint8:
            t = t.float() / LAYOUTS[self.layout].uint8_divisor
        else:
            t = t.float()
            if self.layout == "image" and (value_range == "0-255" or (value_range == "auto" and t.numel()
                                                                       and float(t.max()) > 1.0)):
                t = t / 255.0  # pixels given as 0..255 floats
        if LAYOUTS[self.layout].time_first:
            t = t.transpose(0, 1)  # [B, T, ...] -> [T, B, ...]
        return t.contiguous().to(device) if device is not None else t.contiguous()
