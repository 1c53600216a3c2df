"""Uniform activation quantizer: the activation of the quantized-ANN (QANN) twin.

    y = s * round(clamp(x / s, 0, L)),   L = 2^bits - 1 levels above zero, 2^bits values in all
    backward: straight through the rounding (dy/dx = 1 inside [0, L s], 0 outside); the step s is
    learned as in LSQ (Esser et al., ICLR 2020, arXiv 1902.08153), its gradient scaled by 1/sqrt(n L)

The QANN twin (`twin="qann"`) uses it with bits = ceil(log2(T + 1)): as much information per activation
as T binary time steps (Yan et al., arXiv 2409.08290; STEP), so SNN and QANN compare at equal bits.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .base import Neuron

__all__ = ["QuantNode", "quantize_levels"]


def quantize_levels(T: int) -> int:
    """ceil(log2(T + 1)): bits that hold a count of 0..T spikes."""
    return max(1, math.ceil(math.log2(T + 1)))


class QuantNode(Neuron):
    """Quantized ReLU with `bits` bits and a learned step size (initial range [0, init_max])."""

    domain = "real"

    def __init__(self, *, bits: int = 3, init_max: float = 4.0):
        super().__init__()
        if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 16:
            raise ValueError(f"QuantNode: bits must be an integer in 1..16, got {bits!r}")
        if not init_max > 0:
            raise ValueError(f"QuantNode: init_max must be > 0, got {init_max}")
        self.bits, self.levels = bits, 2 ** bits - 1
        self.step_size = nn.Parameter(torch.tensor(float(init_max) / self.levels))

    def step(self, x: Tensor, state=None):
        return self.forward(x), None

    def forward(self, x: Tensor) -> Tensor:
        g = 1.0 / math.sqrt(max(1, x.numel()) * self.levels)
        s = self.step_size * g + (self.step_size - self.step_size * g).detach()  # LSQ's gradient scale
        s = s.abs().to(x.dtype) + 1e-8
        q = torch.clamp(x / s, 0, self.levels)
        return (q + (q.round() - q).detach()) * s

    def extra_repr(self) -> str:
        return f"bits={self.bits}"
