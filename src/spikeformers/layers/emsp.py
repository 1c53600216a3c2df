"""Experts-mixture spiking perceptron (EMSP) of SEMM (Zhou et al., NeurIPS 2024), as reimplemented in
STEP (Fancyssc/STEP cls/models/static/spikf_semm_cifar.py).

    H      = SN(BN(Linear_{D->h}(X)))            h = mlp_ratio * D (4D)
    H1, H2 = the two halves of H's channels       h/2 each
    G      = SN(BN(DWConv3x3(H1)))                depthwise over the token grid
    Z      = G (.) H2                             channel-wise spiking experts: G gates H2
    out    = SN(BN(Linear_{h/2->D}(Z)))
The depthwise conv needs the tokens as a square grid (side `grid`, N = grid^2): the model passes its
patch embedding's grid. The paper's own EMSP may differ (only its abstract is available).
"""
from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from .bn_fire import fire
from .time import ConvBN, LinearBN
from .hadamard import Hadamard

__all__ = ["EMSP"]


class EMSP(nn.Module):
    """[T, B, N, D] -> [T, B, N, D], N = grid^2; neurons from the `neuron` factory."""
    def __init__(self, dim: int, hidden: int, grid: int, neuron: Callable[..., nn.Module], bias: bool = True):
        super().__init__()
        if hidden < 2 or hidden % 2:
            raise ValueError(f"EMSP needs an even hidden width (split into two halves), got {hidden}")
        if not isinstance(grid, int) or grid < 1:
            raise ValueError(f"EMSP needs the token grid side as a positive integer, got {grid!r}")

        half = hidden // 2
        self.grid = grid
        self.fc1 = LinearBN(dim, hidden, bias)
        self.neuron1 = neuron()
        self.dwconv = ConvBN(half, half, 3, groups=half)  # bias-free as in STEP's CIFAR code
        self.dw_neuron = neuron()
        self.gate = Hadamard()
        self.fc2 = LinearBN(half, dim, bias)
        self.neuron2 = neuron()

    def forward(self, x: Tensor) -> Tensor:
        T, B, N, _ = x.shape
        if N != self.grid * self.grid:
            raise ValueError(f"EMSP expects {self.grid}x{self.grid} = {self.grid ** 2} tokens, got {N}")
        h1, h2 = fire(self.fc1, self.neuron1, x).chunk(2, dim=-1)  # [T, B, N, h/2] each
        g = h1.transpose(2, 3).unflatten(3, (self.grid, self.grid))  # [T, B, h/2, grid, grid]
        g = fire(self.dwconv, self.dw_neuron, g).flatten(3).transpose(2, 3)  # back to [T, B, N, h/2]
        return fire(self.fc2, self.neuron2, self.gate(g, h2))
