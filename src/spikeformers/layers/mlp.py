"""Spiking MLPs on tokens [T, B, N, D]; `create_mlp` picks a spike-residual MLP by name ("spiking" | "emsp").

- SpikingMLP (Spikformer, QKFormer): SN(BN(Linear D->hD)) then SN(BN(Linear hD->D)); output spikes,
  added to a spike residual.
- MembraneMLP (Spike-driven Transformer): SN -> BN(Linear D->hD) -> SN -> BN(Linear hD->D); the neuron
  comes first, so both Linears see binary spikes and the real output is added to the membrane residual.
"""
from __future__ import annotations

from typing import Callable, Optional

from torch import Tensor, nn

from .bn_fire import fire
from .emsp import EMSP
from .norm import create_linear_norm

__all__ = ["SpikingMLP", "MembraneMLP", "create_mlp", "MLPS"]

MLPS = ("spiking", "emsp")


class SpikingMLP(nn.Module):
    """[T, B, N, D] -> [T, B, N, D]; neurons from the `neuron` factory."""

    def __init__(self, dim: int, hidden: int, neuron: Callable[..., nn.Module], bias: bool = True):
        super().__init__()
        self.fc1 = create_linear_norm("batch", dim, hidden, bias)
        self.neuron1 = neuron()
        self.fc2 = create_linear_norm("batch", hidden, dim, bias)
        self.neuron2 = neuron()

    def forward(self, x: Tensor) -> Tensor:
        return fire(self.fc2, self.neuron2, fire(self.fc1, self.neuron1, x))


class MembraneMLP(nn.Module):
    """[T, B, N, D] (membrane potentials) -> [T, B, N, D] (real, to add to the membrane residual).

    Same parameters as `SpikingMLP` (fc1, fc2 with bias and BN); only the neurons move in front.
    `norm`: what follows each Linear ("batch"; "layer"/"rms" per token, for causal models).
    """

    def __init__(self, dim: int, hidden: int, neuron: Callable[..., nn.Module], bias: bool = True,
                 norm: str = "batch"):
        super().__init__()
        self.neuron1 = neuron()
        self.fc1 = create_linear_norm(norm, dim, hidden, bias)
        self.neuron2 = neuron()
        self.fc2 = create_linear_norm(norm, hidden, dim, bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(fire(self.fc1, self.neuron2, self.neuron1(x)))


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
