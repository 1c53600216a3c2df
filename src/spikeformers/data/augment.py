"""Batched augmentation on the data's device: random crop (shift), horizontal flip, random erasing.

Every function takes a float batch `x [B, ..., H, W]` (images `[B, C, H, W]`, event frames
`[B, T, 2, H, W]`: every leading channel/time plane of a sample gets the same choice) and a
`torch.Generator` on the same device as `x`, draws one independent choice per sample, and returns a
new tensor (the input is not modified). Sequences `[B, L, F]` have their own shift along L.
Everything is vectorised (index arithmetic and masks), so a batch costs a few kernel launches
whatever its size: no Python loop over samples, no loader workers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from .base import ArrayDataset

__all__ = ["crop_at", "random_crop", "shift_at", "random_shift", "random_hflip", "random_erasing", "Augment"]


def crop_at(x: Tensor, padding: int, offsets: Tensor) -> Tensor:
    """Zero-pad `x [B, ..., H, W]` by `padding` on each side and cut an H x W window per sample.

    `offsets [B, 2]` (int64, each in `[0, 2 * padding]`) is the (row, column) of each window's
    top-left corner in the padded image, so output pixel (i, j) of sample b is padded pixel
    (i + offsets[b, 0], j + offsets[b, 1]); offset `padding` is the identity. This is a translation
    by `padding - offsets` with zero fill, the same for every plane (channel, time step) of a sample.
    """
    shape = x.shape
    B, H, W = shape[0], shape[-2], shape[-1]
    xp = F.pad(x.reshape(B, -1, H, W), (padding,) * 4).permute(0, 2, 3, 1)  # [B, H+2p, W+2p, planes]
    rows = offsets[:, 0, None] + torch.arange(H, device=x.device)  # [B, H]
    cols = offsets[:, 1, None] + torch.arange(W, device=x.device)  # [B, W]
    b = torch.arange(B, device=x.device)[:, None, None]
    out = xp[b, rows[:, :, None], cols[:, None, :]]  # one gather: [B, H, W, planes]
    return out.permute(0, 3, 1, 2).reshape(shape).contiguous()  # [B, ..., H, W]


def random_crop(x: Tensor, padding: int, gen: torch.Generator) -> Tensor:
    """Random crop after zero padding, with independent offsets per sample (`padding=0`: identity)."""
    if padding < 0:
        raise ValueError(f"random_crop: padding must be >= 0, got {padding}")
    if padding == 0:
        return x
    offsets = torch.randint(0, 2 * padding + 1, (x.shape[0], 2), generator=gen, device=x.device)
    return crop_at(x, padding, offsets)


def shift_at(x: Tensor, padding: int, offsets: Tensor) -> Tensor:
    """Sequences `x [B, L, F]`: zero-pad L by `padding` on each side and cut an L window per sample.

    `offsets [B]` in `[0, 2 * padding]`; output step i of sample b is padded step i + offsets[b].
    """
    B, L, _ = x.shape
    xp = F.pad(x, (0, 0, padding, padding))  # [B, L+2p, F]
    steps = offsets[:, None] + torch.arange(L, device=x.device)  # [B, L]
    return xp[torch.arange(B, device=x.device)[:, None], steps]  # [B, L, F]


def random_shift(x: Tensor, padding: int, gen: torch.Generator) -> Tensor:
    """Sequences `[B, L, F]`: shift each sample along L by up to `padding` steps, zero filled."""
    if padding < 0:
        raise ValueError(f"random_shift: padding must be >= 0, got {padding}")
    if padding == 0:
        return x
    offsets = torch.randint(0, 2 * padding + 1, (x.shape[0],), generator=gen, device=x.device)
    return shift_at(x, padding, offsets)


def random_hflip(x: Tensor, gen: torch.Generator, p: float = 0.5) -> Tensor:
    """Mirror each sample `[B, ..., H, W]` left-right with probability `p`."""
    flip = torch.rand(x.shape[0], generator=gen, device=x.device) < p  # [B]
    return torch.where(flip.view(-1, *[1] * (x.dim() - 1)), x.flip(-1), x)


def random_erasing(
    x: Tensor,
    gen: torch.Generator,
    p: float,
    scale: Tuple[float, float] = (0.02, 0.33),
    ratio: Tuple[float, float] = (0.3, 3.3),
) -> Tensor:
    """Random erasing (Zhong et al. 2020, https://arxiv.org/abs/1708.04896), filled with 0.

    With probability `p` per sample, one rectangle of area `scale` x (H*W) and aspect ratio
    (height / width) log-uniform in `ratio` is zeroed in every channel (and time step) of
    `x [B, ..., H, W]`. Sides are rounded and clamped to the image (rather than re-drawn until
    they fit), so every draw costs the same.
    """
    B, H, W = x.shape[0], x.shape[-2], x.shape[-1]
    dev = x.device
    u = torch.rand(B, 5, generator=gen, device=dev)  # all per-sample draws at once
    apply = u[:, 0] < p
    area = H * W * (scale[0] + (scale[1] - scale[0]) * u[:, 1])
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 2]
    h = torch.sqrt(area * log_r.exp()).round().clamp(1, H).long()  # [B]
    w = torch.sqrt(area / log_r.exp()).round().clamp(1, W).long()
    top = (u[:, 3] * (H - h + 1)).floor().long()  # uniform in [0, H - h]
    left = (u[:, 4] * (W - w + 1)).floor().long()
    i = torch.arange(H, device=dev)
    j = torch.arange(W, device=dev)
    inside_r = (i >= top[:, None]) & (i < (top + h)[:, None])  # [B, H]
    inside_c = (j >= left[:, None]) & (j < (left + w)[:, None])  # [B, W]
    mask = inside_r[:, :, None] & inside_c[:, None, :] & apply[:, None, None]  # [B, H, W]
    return x.masked_fill(mask.view(B, *[1] * (x.dim() - 3), H, W), 0.0)


@dataclass
class Augment:
    """The training augmentation: random crop (a shift with zero fill), horizontal flip, random erasing.

    On images and event frames (`spatial=True`) all three act on the last two axes; on sequences
    (`spatial=False`) the crop is a shift along L and flips and erasing are not defined.
    """

    crop_padding: int = 0  # zero padding of the random crop = largest shift in pixels/steps (0: off)
    flip: bool = False  # random horizontal flip with p = 0.5
    erasing: float = 0.0  # probability of random erasing per sample (0: off)
    spatial: bool = True  # the batch is [B, ..., H, W] (else a sequence [B, L, F])

    def __post_init__(self) -> None:
        if self.crop_padding < 0 or not 0.0 <= self.erasing <= 1.0:
            raise ValueError(f"invalid {self}: need crop_padding >= 0 and 0 <= erasing <= 1")
        if not self.spatial and (self.flip or self.erasing):
            raise ValueError("flip and erasing apply to images and event frames, not to sequences")

    @classmethod
    def for_dataset(
        cls, ds: "ArrayDataset", crop_padding: Optional[int] = None, flip: Optional[bool] = None, erasing: float = 0.0
    ) -> "Augment":
        """The dataset's defaults (`ds.crop_padding`, `ds.flip`) unless overridden (None: default)."""
        spec = getattr(ds, "spec", None)
        return cls(
            crop_padding=ds.crop_padding if crop_padding is None else crop_padding,
            flip=ds.flip if flip is None else flip,
            erasing=erasing,
            spatial=True if spec is None else spec.spatial,
        )

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        """Augment a float batch `x` (`[B, ..., H, W]`, or `[B, L, F]` when not spatial) with `gen`."""
        if not self.spatial:
            return random_shift(x, self.crop_padding, gen)
        if self.crop_padding:
            x = random_crop(x, self.crop_padding, gen)
        if self.flip:
            x = random_hflip(x, gen)
        if self.erasing:
            x = random_erasing(x, gen, self.erasing)
        return x
