"""Spiking MLP: SN(BN(Linear D->hD)) then SN(BN(Linear hD->D)) (Spikformer)."""
from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from .time import LinearBN

__all__ = ["SpikingMLP"]


class SpikingMLP(nn.Module):
    """[T, B, N, D] -> [T, B, N, D]; neurons from the `neuron` factory."""

    def __init__(self, dim: int, hidden: int, neuron: Callable[..., nn.Module], bias: bool = True):
        super().__init__()
        self.fc1 = LinearBN(dim, hidden, bias)
        self.neuron1 = neuron()
        self.fc2 = LinearBN(hidden, dim, bias)
        self.neuron2 = neuron()

    def forward(self, x: Tensor) -> Tensor:
        return self.neuron2(self.fc2(self.neuron1(self.fc1(x))))
