"""Mixup and CutMix on a batch, producing soft targets.

- Mixup (Zhang et al. 2018, https://arxiv.org/abs/1710.09412): x = lam x + (1 - lam) x', with
  lam ~ Beta(a, a).
- CutMix (Yun et al. 2019, https://arxiv.org/abs/1905.04899): a box covering a (1 - lam) fraction of
  the image is pasted from x'; lam is then corrected to the exact pasted area.

As in timm's default "batch" mode, one lam per batch and the partner x' of sample i is sample B-1-i
(the batch reversed), so a batch costs one blend and draws no per-sample randomness. Targets are
`lam one_hot(y) + (1 - lam) one_hot(y')` `[B, classes]`; label smoothing is left to the loss
(smoothing a mix of one-hots equals mixing smoothed one-hots). Scalar draws come from a NumPy
generator on the CPU, so mixing never waits for the device.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["BatchMix", "cutmix_box"]


def cutmix_box(lam: float, H: int, W: int, rng: np.random.Generator) -> Tuple[int, int, int, int]:
    """(top, bottom, left, right) of a box of about (1 - lam) H W pixels, its centre uniform in the image,
    clipped to the image."""
    cut = math.sqrt(1.0 - lam)
    h, w = int(round(H * cut)), int(round(W * cut))
    cy, cx = int(rng.integers(H)), int(rng.integers(W))
    top, bottom = max(cy - h // 2, 0), min(cy + h - h // 2, H)
    left, right = max(cx - w // 2, 0), min(cx + w - w // 2, W)
    return top, bottom, left, right


@dataclass
class BatchMix:
    """Mixup and/or CutMix with probability `prob` per batch; returns `(x, soft targets [B, classes])`.

    With both on, each mixed batch uses CutMix with probability `switch_prob`, else Mixup.
    """

    num_classes: int
    mixup: float = 0.0  # Beta(a, a) parameter of mixup (0: off)
    cutmix: float = 0.0  # Beta(a, a) parameter of cutmix (0: off)
    prob: float = 1.0  # probability that a batch is mixed at all
    switch_prob: float = 0.5  # with both on: probability of cutmix rather than mixup
    off_epoch: Optional[int] = None  # plain one-hot targets from this epoch on (None: never)
    spatial: bool = True  # the batch is [B, ..., H, W] (cutmix needs rows and columns)

    def __post_init__(self) -> None:
        if self.mixup < 0 or self.cutmix < 0 or not 0 <= self.prob <= 1 or not 0 <= self.switch_prob <= 1:
            raise ValueError(f"invalid {self}: need mixup, cutmix >= 0 and prob, switch_prob in [0, 1]")
        if self.cutmix > 0 and not self.spatial:
            raise ValueError("cutmix pastes image boxes: it applies to images and event frames, not to sequences")
        if self.num_classes < 2:
            raise ValueError(f"BatchMix needs num_classes >= 2, got {self.num_classes}")

    @property
    def enabled(self) -> bool:
        return (self.mixup > 0 or self.cutmix > 0) and self.prob > 0

    def active(self, epoch: int) -> bool:
        return self.enabled and (self.off_epoch is None or epoch < self.off_epoch)

    def __call__(self, x: Tensor, y: Tensor, rng: np.random.Generator, epoch: int = 0) -> Tuple[Tensor, Tensor]:
        """Mix a float batch `x [B, ...]` with labels `y [B]`; returns a new `x` and targets `[B, classes]`."""
        target = F.one_hot(y, self.num_classes).to(torch.float32)
        if not self.active(epoch) or rng.random() >= self.prob:
            return x, target
        use_cutmix = self.cutmix > 0 and (self.mixup == 0 or rng.random() < self.switch_prob)
        lam = float(rng.beta(self.cutmix, self.cutmix) if use_cutmix else rng.beta(self.mixup, self.mixup))
        partner = x.flip(0)
        if use_cutmix:
            H, W = x.shape[-2], x.shape[-1]
            top, bottom, left, right = cutmix_box(lam, H, W, rng)
            x = x.clone()
            x[..., top:bottom, left:right] = partner[..., top:bottom, left:right]
            lam = 1.0 - (bottom - top) * (right - left) / (H * W)  # the area actually pasted
        else:
            x = x * lam + partner * (1.0 - lam)
        return x, target * lam + target.flip(0) * (1.0 - lam)
