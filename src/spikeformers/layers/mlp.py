"""Spiking MLP: SN(BN(Linear D->hD)) then SN(BN(Linear hD->D)) (Spikformer); `create_mlp` picks an
MLP by name ("spiking" | "emsp")."""
from __future__ import annotations

from typing import Callable, Optional

from torch import Tensor, nn

from .emsp import EMSP
from .time import LinearBN

__all__ = ["SpikingMLP", "create_mlp", "MLPS"]

MLPS = ("spiking", "emsp")


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


def create_mlp(kind: str, dim: int, hidden: int, neuron: Callable[..., nn.Module], *, grid: Optional[int] = None,
               bias: bool = True) -> nn.Module:
    """The MLP of a block by name; "emsp" needs the token grid side (`grid`)."""
    if kind == "spiking":
        return SpikingMLP(dim, hidden, neuron, bias)
    if kind == "emsp":
        if grid is None:
            raise ValueError("mlp 'emsp' needs the token grid side (grid=...), for its depthwise conv")
        return EMSP(dim, hidden, grid, neuron, bias)
    raise ValueError(f"unknown mlp {kind!r}; valid mlps: {', '.join(MLPS)}")
