"""Token shift: each channel mixes in the previous token's value, x_n + mu (x_{n-1} - x_n), mu learned
per channel (RWKV's and SpikeGPT's time-mix, Zhu et al., TMLR 2024). It hands every block the bigram
context for free, before any attention has learned to look back; it is causal (position 0 mixes in
zeros) and costs two operations per element."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["TokenShift"]


class TokenShift(nn.Module):
    """[..., N, D] -> [..., N, D]; `prev [..., 1, D]` is the token before the first one (streaming)."""

    def __init__(self, dim: int, init: float = 0.5):
        super().__init__()
        self.mu = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: Tensor, prev: Optional[Tensor] = None) -> Tensor:
        before = F.pad(x[..., :-1, :], (0, 0, 1, 0)) if prev is None else torch.cat([prev, x[..., :-1, :]], -2)
        return x + self.mu.to(x.dtype) * (before - x)
