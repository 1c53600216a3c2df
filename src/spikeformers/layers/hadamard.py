"""`Hadamard`: the element-wise product as a module."""
from __future__ import annotations

from torch import Tensor, nn

__all__ = ["Hadamard"]


class Hadamard(nn.Module):
    """Element-wise product `a * b` (broadcasting) as a module, so the energy counter's hooks see both
    operands (spike masks in SDSA, Q-K attention, expert routing)."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return a * b
