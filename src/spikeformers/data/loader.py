"""`DeviceLoader`: batches straight from tensors already on the device, with no worker processes.

The order and the augmentation of an epoch depend only on `(seed, epoch)`: each pass re-seeds a
generator on the data's device from `seed * 1000003 + epoch`, so resuming at an epoch boundary
(`set_epoch(e)` on a fresh loader) replays exactly the batches an uninterrupted run would see.
"""
from __future__ import annotations

import math
from typing import Iterator, Optional, Tuple

import torch
from torch import Tensor

from .augment import Augment

__all__ = ["DeviceLoader"]


class DeviceLoader:
    """Iterate `(x [B, C, H, W] float32 in [0, 1], y [B] int64)` on the device of `x_uint8`.

    Args:
        x_uint8: images `[N, C, H, W]` uint8.
        y: labels `[N]`, on the same device.
        batch_size: samples per batch (the last one may be smaller unless `drop_last`).
        shuffle: draw a new permutation every epoch (else the stored order).
        augment: applied to each float batch (None: no augmentation).
        seed: base seed; with the epoch it fixes order and augmentation.
        drop_last: skip the final incomplete batch.

    Call `set_epoch(epoch)` before each epoch (like `DistributedSampler`); iterating twice without
    it replays the same epoch.
    """

    def __init__(
        self,
        x_uint8: Tensor,
        y: Tensor,
        batch_size: int,
        *,
        shuffle: bool,
        augment: Optional[Augment],
        seed: int,
        drop_last: bool = False,
    ):
        if x_uint8.dtype != torch.uint8 or x_uint8.dim() != 4:
            got = f"{x_uint8.dtype} {list(x_uint8.shape)}"
            raise ValueError(f"DeviceLoader: x must be uint8 [N, C, H, W], got {got}")
        if y.shape != (len(x_uint8),) or y.device != x_uint8.device:
            raise ValueError(
                f"DeviceLoader: y must be [{len(x_uint8)}] on {x_uint8.device}, got {list(y.shape)} on {y.device}"
            )
        if batch_size < 1:
            raise ValueError(f"DeviceLoader: batch_size must be >= 1, got {batch_size}")
        self.x, self.y = x_uint8, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        self.rank, self.world_size = 0, 1

    @property
    def device(self) -> torch.device:
        return self.x.device

    def set_shard(self, rank: int, world_size: int) -> None:
        """Data parallelism: yield only every `world_size`-th sample (from `rank`) of each global batch,
        augmented exactly as a single process would augment it."""
        if not 0 <= rank < world_size:
            raise ValueError(f"DeviceLoader: rank {rank} is not in [0, {world_size})")
        self.rank, self.world_size = rank, world_size

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and augmentation the next iteration produces."""
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Tuple[Tensor, Tensor]]:
        device = self.x.device
        gen = torch.Generator(device=device)
        gen.manual_seed((self.seed * 1000003 + self.epoch) % (1 << 63))  # 1000003: a prime
        n = len(self.y)
        order = torch.randperm(n, generator=gen, device=device) if self.shuffle else torch.arange(n, device=device)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            if self.augment is None:
                idx = idx[self.rank :: self.world_size]
                yield self.x[idx].float().div_(255.0), self.y[idx]  # [B, C, H, W] in [0, 1]
                continue
            # Augment the whole global batch, then keep this rank's share: the random draws are the ones
            # a single process makes, so N ranks see exactly the data of one (for B x C x H x W floats).
            x = self.augment(self.x[idx].float().div_(255.0), gen)
            yield x[self.rank :: self.world_size].contiguous(), self.y[idx[self.rank :: self.world_size]]
