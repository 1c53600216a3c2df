"""`SceneLoader`: batches of a `SceneDataset` on its own device, image, boxes and class map augmented
together (random horizontal flip, random translation with zero fill), no workers.

Each batch is `(x, target)`: x `[B, C, S, S]` float in [0, 1] (event frames: `[T, B, 2, S, S]` float
counts), target a dict of `boxes [B, M, 4]` float (x0, y0, x1, y1), `labels [B, M]` int64 (-1: none)
and `masks [B, S, S]` int64 (0 background, k + 1 class k, 255 ignored). A translated box is clipped to
the image; one left narrower or lower than 2 pixels is dropped (label -1). Order and augmentation
depend only on (seed, epoch), as in `DeviceLoader`.
"""
from __future__ import annotations

import math
from typing import Dict, Iterator, Tuple

import torch
from torch import Tensor

from .augment import crop_at
from .epochs import EpochShards

__all__ = ["SceneLoader"]


class SceneLoader(EpochShards):
    """Args: images, boxes, labels, masks (one split of a SceneDataset), batch_size, shuffle, seed,
    flip (probability of a horizontal flip), shift (largest translation in pixels), drop_last."""

    batch_dim = 0

    def __init__(self, images: Tensor, boxes: Tensor, labels: Tensor, masks: Tensor, batch_size: int, *, shuffle: bool,
                 seed: int = 0, flip: float = 0.0, shift: int = 0, drop_last: bool = False):
        if batch_size < 1:
            raise ValueError(f"SceneLoader: batch_size must be >= 1, got {batch_size}")
        self.images, self.boxes, self.labels, self.masks = images, boxes, labels, masks
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.flip, self.shift, self.drop_last = flip, shift, drop_last
        self.events = images.dim() == 5  # [N, T, 2, S, S] counts

    @property
    def device(self) -> torch.device:
        return self.images.device

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _augment(self, x: Tensor, boxes: Tensor, labels: Tensor, masks: Tensor, gen: torch.Generator):
        B, S = x.shape[0], x.shape[-1]
        valid = labels >= 0
        if self.flip:
            f = torch.rand(B, generator=gen, device=x.device) < self.flip
            x = torch.where(f.view(-1, *[1] * (x.dim() - 1)), x.flip(-1), x)
            masks = torch.where(f[:, None, None], masks.flip(-1), masks)
            flipped = torch.stack([S - boxes[..., 2], boxes[..., 1], S - boxes[..., 0], boxes[..., 3]], -1)
            boxes = torch.where(f[:, None, None], flipped, boxes)
        if self.shift:
            p = self.shift
            off = torch.randint(0, 2 * p + 1, (B, 2), generator=gen, device=x.device)
            x = crop_at(x, p, off)
            masks = crop_at(masks, p, off)  # uncovered pixels become background (0)
            d = (p - off).to(boxes.dtype)  # [B, 2]: the content moves by (rows, cols)
            boxes = boxes + torch.stack([d[:, 1], d[:, 0], d[:, 1], d[:, 0]], -1)[:, None]
            boxes = boxes.clamp(0, S)
            valid = valid & (boxes[..., 2] - boxes[..., 0] >= 2) & (boxes[..., 3] - boxes[..., 1] >= 2)
        return x, torch.where(valid[..., None], boxes, torch.zeros_like(boxes)), torch.where(valid, labels, -1), masks

    def __iter__(self) -> Iterator[Tuple[Tensor, Dict[str, Tensor]]]:
        gen = torch.Generator(device=self.device)
        gen.manual_seed((self.seed * 1000003 + self.epoch) % (1 << 63))
        n = len(self.images)
        order = torch.randperm(n, generator=gen, device=self.device) if self.shuffle else torch.arange(n, device=self.device)
        mine = slice(self.rank, None, self.world_size)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            x = self.images[idx].float()
            if not self.events:
                x.div_(255.0)
            boxes, labels, masks = self.boxes[idx].float(), self.labels[idx], self.masks[idx].long()
            if self.shuffle and (self.flip or self.shift):  # whole global batch, as one process draws it
                x, boxes, labels, masks = self._augment(x, boxes, labels, masks, gen)
            x, boxes, labels, masks = x[mine].contiguous(), boxes[mine], labels[mine], masks[mine]
            if self.events:
                x = x.transpose(0, 1).contiguous()  # [B, T, 2, S, S] -> [T, B, 2, S, S]
            yield x, {"boxes": boxes.contiguous(), "labels": labels.contiguous(), "masks": masks.contiguous()}
