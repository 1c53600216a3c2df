"""Stateless layers on time-first tensors: T is folded into the batch, run, and unfolded.

Only neurons see T as its own axis (Spikformer App. B), so convs and BN run on `x.flatten(0, 1)`.
BN is `layers.batchnorm`'s (torch's, with Triton kernels for training on CUDA). Where those kernels run,
the Linear/conv bias is passed to BN as `pre_bias` instead of being added: BN's batch statistics cancel
it, so its gradient is exactly zero, and the bf16 column sum that torch's backward spends on it
(benchmarks/NOTES.md) is skipped. `fire(x, neuron)` is
`neuron(layer(x))` with BN and the neuron fused (`bn_fire.py`). On that path a Linear whose input is binary
spikes keeps it as bits for backward (`spike_linear.py`).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..neurons.base import is_binary
from .batchnorm import BatchNorm1d, BatchNorm2d
from .bn_fire import bn_fire, normalize
from .spike_linear import spike_linear

__all__ = ["fold", "unfold", "ConvBN", "LinearBN"]


def fold(x: Tensor) -> Tensor:
    """[T, B, ...] -> [T*B, ...]"""
    return x.flatten(0, 1)


def unfold(x: Tensor, T: int) -> Tensor:
    """[T*B, ...] -> [T, B, ...]"""
    return x.unflatten(0, (T, -1))


def _folds_bias(layer: nn.Module, bn: nn.Module, x: Tensor) -> bool:
    """Pass the layer's bias to BN as `pre_bias`? Only our BatchNorm takes one (not, e.g., the
    all-reduce BatchNorm that `run.sync_bn` swaps in)."""
    return layer.bias is not None and isinstance(bn, (BatchNorm1d, BatchNorm2d)) and bn.will_fold_bias(x)


class ConvBN(nn.Module):
    """Conv2d (no bias by default; `groups=in_chans` for depthwise) + BatchNorm2d on [T, B, C, H, W]."""

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int = 3, stride: int = 1, bias: bool = False,
                 groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, out_chans, kernel_size, stride, kernel_size // 2, bias=bias, groups=groups)
        self.bn = BatchNorm2d(out_chans)

    def _pre_bn(self, x: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """The conv's output [T*B, C, H, W] and the bias BN still has to add (None: added, or none)."""
        c = self.conv
        if _folds_bias(c, self.bn, x):
            return c._conv_forward(fold(x), c.weight, None), c.bias
        return c(fold(x)), None

    def forward(self, x: Tensor) -> Tensor:
        y, bias = self._pre_bn(x)
        return unfold(normalize(self.bn, y, bias), x.shape[0])

    def fire(self, x: Tensor, neuron: nn.Module) -> Tensor:
        """`neuron(self(x))`, with BN and the neuron fused where `bn_fire` can."""
        y, bias = self._pre_bn(x)
        return bn_fire(self.bn, neuron, y, (x.shape[0], -1, *y.shape[1:]), bias)


class LinearBN(nn.Module):
    """Linear + BatchNorm over the last (channel) axis, for token tensors [T, B, N, D].

    BN statistics are per channel over all T*B*N positions, as with the official repos' BN1d on [TB, D, N].
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.bn = BatchNorm1d(out_features)

    def _pre_bn(self, x: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """The Linear's output [T, B, N, D] and the bias BN still has to add (None: added, or none)."""
        lin = self.linear
        if _folds_bias(lin, self.bn, x):  # the training kernels' path
            if is_binary(x) and torch.is_grad_enabled():  # spikes in: saved as bits for backward
                return spike_linear(x, lin.weight), lin.bias
            return F.linear(x, lin.weight), lin.bias
        return lin(x), None

    def forward(self, x: Tensor) -> Tensor:
        y, bias = self._pre_bn(x)
        return normalize(self.bn, y.reshape(-1, y.shape[-1]), bias).view(y.shape)  # [T*B*N, D] for BN1d

    def fire(self, x: Tensor, neuron: nn.Module) -> Tensor:
        """`neuron(self(x))`, with BN and the neuron fused where `bn_fire` can."""
        y, bias = self._pre_bn(x)
        return bn_fire(self.bn, neuron, y.reshape(-1, y.shape[-1]), y.shape, bias)
