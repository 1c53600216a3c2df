"""`DeviceLoader`: batches straight from tensors already on the device, with no worker processes.

The order, the augmentation and the mixing of an epoch depend only on `(seed, epoch)`: each pass
re-seeds a generator on the data's device from `seed * 1000003 + epoch` (and a CPU NumPy generator
from `(seed, epoch)` for mixup/cutmix), so resuming at an epoch boundary (`set_epoch(e)` on a fresh
loader) replays exactly the batches an uninterrupted run would see.

One mechanism serves every layout (`base.LAYOUTS`): gather the batch, convert to float (uint8 divided
by the layout's divisor), augment, mix, and put time first for event frames.
"""
from __future__ import annotations

import math
from typing import Iterator, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from .augment import Augment
from .base import LAYOUTS
from .epochs import EpochShards
from .mix import BatchMix

__all__ = ["DeviceLoader"]


class DeviceLoader(EpochShards):
    """Iterate model-ready `(x, target)` batches on the device of `x`.

    Batches by layout: "image" `[B, C, H, W]` float in [0, 1]; "events" `[T, B, 2, H, W]` float
    counts; "sequence" `[B, L, F]` float (uint8 storage scaled to [0, 1]). Targets are the labels
    `[B]` int64, or soft targets `[B, classes]` float when `mix` is given.

    Args:
        x: stored samples `[N, ...]` (uint8; float32 also for sequences), see `base.LAYOUTS`.
        y: labels `[N]` int64, on the same device.
        batch_size: samples per batch (the last one may be smaller unless `drop_last`).
        shuffle: draw a new permutation every epoch (else the stored order).
        augment: applied to each float batch before mixing (None: no augmentation).
        seed: base seed; with the epoch it fixes order, augmentation and mixing.
        drop_last: skip the final incomplete batch.
        layout: "image", "events" or "sequence".
        mix: mixup/cutmix producing soft targets (None: hard labels).

    Call `set_epoch(epoch)` before each epoch (like `DistributedSampler`); iterating twice without
    it replays the same epoch.
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        batch_size: int,
        *,
        shuffle: bool,
        augment: Optional[Augment],
        seed: int,
        drop_last: bool = False,
        layout: str = "image",
        mix: Optional[BatchMix] = None,
    ):
        if layout not in LAYOUTS:
            raise ValueError(f"DeviceLoader: unknown layout {layout!r}; valid layouts: {', '.join(LAYOUTS)}")
        spec = LAYOUTS[layout]
        dtypes = (torch.uint8, torch.float32) if spec.float_storage else (torch.uint8,)
        if x.dtype not in dtypes or x.dim() != 1 + spec.sample_dims:
            want = {"image": "[N, C, H, W]", "events": "[N, T, 2, H, W]", "sequence": "[N, L, F]"}[layout]
            kinds = " or ".join(str(d).replace("torch.", "") for d in dtypes)
            raise ValueError(f"DeviceLoader: {layout} x must be {kinds} {want}, got {x.dtype} {list(x.shape)}")
        if y.shape != (len(x),) or y.device != x.device:
            raise ValueError(f"DeviceLoader: y must be [{len(x)}] on {x.device}, got {list(y.shape)} on {y.device}")
        if batch_size < 1:
            raise ValueError(f"DeviceLoader: batch_size must be >= 1, got {batch_size}")
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.seed = seed
        self.drop_last = drop_last
        self.layout, self.spec = layout, spec
        self.mix = mix if mix is not None and mix.enabled else None

    @property
    def device(self) -> torch.device:
        return self.x.device

    @property
    def batch_dim(self) -> int:
        """The batch axis of the yielded `x` (1 for time-first event frames, else 0)."""
        return 1 if self.spec.time_first else 0

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Tuple[Tensor, Tensor]]:
        device = self.x.device
        gen = torch.Generator(device=device)
        gen.manual_seed((self.seed * 1000003 + self.epoch) % (1 << 63))  # 1000003: a prime
        mix = self.mix if self.mix is not None and self.mix.active(self.epoch) else None
        rng = np.random.default_rng([self.seed % (1 << 63), self.epoch]) if mix else None
        n = len(self.y)
        order = torch.randperm(n, generator=gen, device=device) if self.shuffle else torch.arange(n, device=device)
        divisor = self.spec.uint8_divisor if self.x.dtype == torch.uint8 else 1.0
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            mine = slice(self.rank, None, self.world_size)
            late = self.augment is not None or mix is not None
            if not late:
                idx = idx[mine]
            x = self.x[idx].float()  # [B, ...] as stored
            if divisor != 1.0:
                x.div_(divisor)  # pixels to [0, 1]; counts stay counts
            if self.augment is not None:
                x = self.augment(x, gen)
            y = self.y[idx]
            if mix is not None:
                x, y = mix(x, y, rng, self.epoch)
            if late:
                # Random draws were made for the whole global batch, as a single process makes them, so
                # N ranks together see exactly the data of one; keep this rank's share.
                x, y = x[mine].contiguous(), y[mine]
            if self.spec.time_first:
                x = x.transpose(0, 1).contiguous()  # [B, T, ...] -> [T, B, ...]
            yield x, y
