"""Spike-equivalent forms of the parts that are not linear in the spikes: products of two (or three) spike
trains and max-pooling. Accumulate-and-correct, as SpikeZIP-TF's spike-equivalent self-attention (You et al.,
ICML 2024): with A[t] = a[0] + ... + a[t] the running sum of a train of increments a,

    bilinear f(A, B):   out[t] = f(a[t], B[t]) + f(A[t-1], b[t])      = f(A[t], B[t]) - f(A[t-1], B[t-1])
    Q K^T V (q_kv):     KV = K^T V;  dKV[t] = k[t]^T V[t] + K[t-1]^T v[t];  out[t] = q[t] KV[t] + Q[t-1] dKV[t]
    Q K^T V (qk_v):     S = Q K^T;   dS[t] = q[t] K[t]^T + Q[t-1] k[t]^T;   out[t] = dS[t] V[t] + S[t-1] v[t]
    max-pool:           out[t] = pool(A[t]) - pool(A[t-1])

so the output summed to any step t is the operation applied to the inputs summed to t: exact at every step,
not only in the limit. Every term but one is driven by the spikes of one operand (q, k, v, a or b: events);
the exception is the triple product's Q[t-1] dKV[t] (or dS[t] V[t]), a product of two running sums, which
the energy counter charges as multiply-accumulates (`energy/conversion.py`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...attention.base import AttentionProduct

__all__ = ["AccumulatedHadamard", "AccumulatedProduct", "AccumulatedMaxPool", "running_sums"]


def running_sums(*trains: Tensor):
    """(A, A - a) per train a [T, ...]: the sum to step t and to step t - 1."""
    out = []
    for a in trains:
        acc = a.cumsum(0)
        out += [acc, acc - a]
    return out


class AccumulatedHadamard(nn.Module):
    """a (.) b of two time-first trains (broadcasting), as increments: a[t] B[t] + A[t-1] b[t]."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        _, a_prev, B, _ = running_sums(a, b)
        return a * B + a_prev * b


class AccumulatedProduct(AttentionProduct):
    """scale * Q K^T V of three time-first trains [T, ..., N, d], as increments, in the order `order_for`
    picks (the one the QANN ran; both are exact)."""

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        Q, Q_prev, K, K_prev, V, _ = running_sums(q, k, v)
        if self.order_for(q.shape) == "q_kv":
            d_kv = k.transpose(-2, -1) @ V + K_prev.transpose(-2, -1) @ v
            y = q @ (K.transpose(-2, -1) @ V) + Q_prev @ d_kv
        else:
            d_s = q @ K.transpose(-2, -1) + Q_prev @ k.transpose(-2, -1)
            s_prev = Q @ K.transpose(-2, -1) - d_s
            y = d_s @ V + s_prev @ v
        return y * self.scale if self.scale != 1.0 else y


class AccumulatedMaxPool(nn.Module):
    """Max-pool (as `nn.MaxPool2d`'s kernel, stride, padding) of time-first maps as increments. The zoo's
    patch embeddings pool folded maps [T*B, C, H, W], so the pool keeps its T (`steps`)."""

    def __init__(self, kernel_size, stride, padding, steps: int):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.steps = int(steps)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[0] % self.steps:
            raise ValueError(f"AccumulatedMaxPool was converted for T = {self.steps}; got {x.shape[0]} folded maps")
        # float64 sums: multiples of a float32 threshold are exact there, so a train of spikes pools into
        # spikes of exactly that amplitude (float32 sums would round them into several magnitudes)
        acc = x.unflatten(0, (self.steps, -1)).to(torch.float64).cumsum(0)
        pooled = F.max_pool2d(acc.flatten(0, 1), self.kernel_size, self.stride, self.padding).unflatten(0, acc.shape[:2])
        return torch.diff(pooled, dim=0, prepend=torch.zeros_like(pooled[:1])).flatten(0, 1).to(x.dtype)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, steps={self.steps}"
