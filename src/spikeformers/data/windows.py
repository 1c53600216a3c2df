"""`WindowLoader`: language-model batches cut from a token stream on its own device, no workers.

Training (`shuffle=True`): every batch is `batch_size` windows at uniformly random offsets, drawn by a
generator on the stream's device seeded from `(seed, epoch)`, so an epoch replays exactly on resume.
An epoch is as many windows as the stream has tokens (`len(tokens) // (batch_size * seq_len)`
batches, at least one). Evaluation (`shuffle=False`): consecutive non-overlapping windows from the
start, so every token is scored once (all but the first, and the fewer than `seq_len` left at the end).

Each batch is `(x, y)`: `x [B, seq_len]` int64 token ids and `y [B, seq_len]` the next tokens.
"""
from __future__ import annotations

import math
from typing import Iterator, Optional, Tuple

import torch
from torch import Tensor

from .epochs import EpochShards

__all__ = ["WindowLoader"]


class WindowLoader(EpochShards):
    """Args: tokens (1-D integer stream), batch_size, seq_len, shuffle (random windows per epoch, else
    consecutive), seed, steps (training batches per epoch; None: one stream's worth of tokens)."""

    batch_dim = 0

    def __init__(self, tokens: Tensor, batch_size: int, seq_len: int, *, shuffle: bool, seed: int = 0,
                 steps: Optional[int] = None):
        if tokens.dim() != 1:
            raise ValueError(f"WindowLoader: tokens must be a 1-D stream, got shape {list(tokens.shape)}")
        if batch_size < 1 or seq_len < 1:
            raise ValueError(f"WindowLoader: batch_size and seq_len must be >= 1, got {batch_size}, {seq_len}")
        if len(tokens) < seq_len + 1:
            raise ValueError(f"WindowLoader: {len(tokens)} tokens cannot fill one window of {seq_len} + 1")
        self.tokens, self.batch_size, self.seq_len = tokens, batch_size, seq_len
        self.shuffle, self.seed = shuffle, seed
        self.windows = (len(tokens) - 1) // seq_len  # consecutive windows (evaluation)
        self.steps = steps if steps is not None else max(1, len(tokens) // (batch_size * seq_len))
        self._offsets = torch.arange(seq_len + 1, device=tokens.device)

    @property
    def device(self) -> torch.device:
        return self.tokens.device

    def __len__(self) -> int:
        return self.steps if self.shuffle else math.ceil(self.windows / self.batch_size)

    def _batch(self, starts: Tensor) -> Tuple[Tensor, Tensor]:
        w = self.tokens[starts[self.rank::self.world_size, None] + self._offsets].long()  # [B, L + 1]
        return w[:, :-1], w[:, 1:]

    def __iter__(self) -> Iterator[Tuple[Tensor, Tensor]]:
        if not self.shuffle:
            starts = torch.arange(self.windows, device=self.device) * self.seq_len
            for b in range(len(self)):
                yield self._batch(starts[b * self.batch_size:(b + 1) * self.batch_size])
            return
        gen = torch.Generator(device=self.device)
        gen.manual_seed((self.seed * 1000003 + self.epoch) % (1 << 63))  # as DeviceLoader
        high = len(self.tokens) - self.seq_len  # a window needs seq_len + 1 tokens
        for _ in range(self.steps):
            yield self._batch(torch.randint(0, high, (self.batch_size,), generator=gen, device=self.device))
