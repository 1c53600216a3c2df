"""Stateless layers on time-first tensors: T is folded into the batch, run, and unfolded.

Only neurons see T as its own axis (Spikformer App. B), so convs and BN run on `x.flatten(0, 1)`.
BN is `layers.batchnorm`'s (torch's, with Triton kernels for training on CUDA).
"""
from __future__ import annotations

from torch import Tensor, nn

from .batchnorm import BatchNorm1d, BatchNorm2d

__all__ = ["fold", "unfold", "ConvBN", "LinearBN"]


def fold(x: Tensor) -> Tensor:
    """[T, B, ...] -> [T*B, ...]"""
    return x.flatten(0, 1)


def unfold(x: Tensor, T: int) -> Tensor:
    """[T*B, ...] -> [T, B, ...]"""
    return x.unflatten(0, (T, -1))


class ConvBN(nn.Module):
    """Conv2d (no bias by default; `groups=in_chans` for depthwise) + BatchNorm2d on [T, B, C, H, W]."""

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int = 3, stride: int = 1, bias: bool = False,
                 groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, out_chans, kernel_size, stride, kernel_size // 2, bias=bias, groups=groups)
        self.bn = BatchNorm2d(out_chans)

    def forward(self, x: Tensor) -> Tensor:
        return unfold(self.bn(self.conv(fold(x))), x.shape[0])


class LinearBN(nn.Module):
    """Linear + BatchNorm over the last (channel) axis, for token tensors [T, B, N, D].

    BN statistics are per channel over all T*B*N positions, as with the official repos' BN1d on [TB, D, N].
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.bn = BatchNorm1d(out_features)

    def forward(self, x: Tensor) -> Tensor:
        y = self.linear(x)
        return self.bn(y.reshape(-1, y.shape[-1])).view(y.shape)  # [T*B*N, D] for BN1d
