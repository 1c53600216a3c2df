"""Shiftmax: a shift-only row normalisation standing in for softmax (Bipolar Self-attention,
OpenReview nG45z7lJ7D).

    Shiftmax(x)_i = 2^(x_i - max_j x_j) / 2^ceil(log2 sum_j 2^(x_j - max_j x_j))

This is the best available reading (a third-party form; the paper's text is not available), not the paper's
confirmed definition. For integer scores (ternary Q K^T) numerator and denominator are powers of two,
so the weights are powers of two and applying them is a bit shift. Each row sums to S / 2^ceil(log2 S)
with S >= 1, i.e. to a value in (0.5, 1]: row-stochastic up to a factor of at most 2.

Gradient: straight-through on the ceiling. The backward treats 2^ceil(log2 S) as S, i.e. uses the
Jacobian of the base-2 softmax p_i = 2^(x_i - max) / S:  dL/dx = ln 2 * p (.) (g - sum_j g_j p_j).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["Shiftmax", "ShiftmaxProduct", "shiftmax"]


class _Shiftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, dim: int) -> Tensor:
        num = torch.exp2(x - x.amax(dim, keepdim=True))  # 2^(x - max): 1 at the maximum
        s = num.sum(dim, keepdim=True)  # >= 1
        ctx.save_for_backward(num / s)  # base-2 softmax, for the straight-through backward
        ctx.dim = dim
        return num * torch.exp2(-torch.ceil(torch.log2(s)))  # exact division by a power of two

    @staticmethod
    def backward(ctx, g: Tensor):
        (p,) = ctx.saved_tensors
        return math.log(2.0) * p * (g - (g * p).sum(ctx.dim, keepdim=True)), None


def shiftmax(x: Tensor, dim: int = -1) -> Tensor:
    """Functional Shiftmax over `dim` (see the module docstring)."""
    return _Shiftmax.apply(x, dim)


class Shiftmax(nn.Module):
    """Shiftmax over the last axis, as a module (the energy counter sees the scores)."""

    def forward(self, x: Tensor) -> Tensor:
        return _Shiftmax.apply(x, -1)


class ShiftmaxProduct(nn.Module):
    """Shiftmax(scale * Q K^T) V on [..., N, d]: the score matrix is needed, so the order is always
    (Q K^T) V (`order_for` returns "qk_v")."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = float(scale)
        self.shiftmax = Shiftmax()

    def order_for(self, q_shape) -> str:
        return "qk_v"

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        scores = q @ k.transpose(-2, -1)  # [.., N, N]
        if self.scale != 1.0:
            scores = scores * self.scale
        return self.shiftmax(scores) @ v

    def extra_repr(self) -> str:
        return f"scale={self.scale}"
