"""Spiking patch splitting for 1-D sequences: `[T, B, L, F]` -> tokens `[T, B, N, D]`.

Four Conv1d-BN-neuron stages with D/8, D/4, D/2, D channels over the sequence axis (the F features
of a step are the input channels); `strides` (e.g. "0111") says which stages use stride 2, halving
the length. An optional adaptive max-pool then fixes the token count (`tokens`; max keeps spikes
binary). Then, as in the 2-D SPS, RPE = SN(BN(Conv1d_3(x))) and X0 = x + RPE (values {0, 1, 2}).

This follows STEP's `sequential_embed` for sMNIST/psMNIST/sCIFAR (Fancyssc/STEP,
cls/models/static/spikformer_cifar.py: kernel 5 with bias, strides 1,2,2,2 below length 1024 and
2,2,2,2 from 1024, 64 tokens); differences: STEP average-pools to 64 tokens and adds its RPE
before a neuron, we max-pool and spike the RPE as the 2-D SPS does.
"""
from __future__ import annotations

from typing import Callable, Optional

from torch import Tensor, nn

from .time import fold, unfold

__all__ = ["SPS1d", "ConvBN1d", "check_strides"]


def check_strides(strides: str, seq_len: int, stages: int = 4) -> int:
    """Validate a stride string and return the length after the stages."""
    if not isinstance(strides, str) or len(strides) != stages or set(strides) - {"0", "1"}:
        raise ValueError(f"strides must be a string of {stages} '0'/'1' flags (e.g. '0111'), got {strides!r}")
    n = seq_len
    for flag in strides:
        n = (n + 1) // 2 if flag == "1" else n  # kernel k, padding k // 2, stride 2: ceil(n / 2)
    if n < 1:
        raise ValueError(f"seq_len {seq_len} is too short for strides {strides!r}")
    return n


class ConvBN1d(nn.Module):
    """Conv1d + BatchNorm1d on `[T, B, C, L]` (T folded into the batch)."""

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int, stride: int = 1, bias: bool = False):
        super().__init__()
        self.conv = nn.Conv1d(in_chans, out_chans, kernel_size, stride, kernel_size // 2, bias=bias)
        self.bn = nn.BatchNorm1d(out_chans)

    def forward(self, x: Tensor) -> Tensor:
        return unfold(self.bn(self.conv(fold(x))), x.shape[0])


class SPS1d(nn.Module):
    """`[T, B, L, F]` -> tokens `[T, B, N, D]` (see the module docstring)."""

    def __init__(self, in_features: int, dim: int, seq_len: int, strides: str, neuron: Callable[..., nn.Module], *,
                 kernel_size: int = 5, tokens: Optional[int] = None, bias: bool = True):
        super().__init__()
        if dim % 8:
            raise ValueError(f"SPS1d needs dim divisible by 8, got {dim}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"SPS1d needs an odd kernel_size >= 1, got {kernel_size}")
        length = check_strides(strides, seq_len)
        if tokens is not None and not 1 <= tokens <= length:
            raise ValueError(f"tokens must be in [1, {length}] (the length after strides {strides!r}), got {tokens}")
        self.num_tokens = tokens if tokens is not None else length
        chans = [in_features, dim // 8, dim // 4, dim // 2, dim]
        self.stages = nn.ModuleList(
            ConvBN1d(chans[i], chans[i + 1], kernel_size, 2 if f == "1" else 1, bias) for i, f in enumerate(strides)
        )
        self.neurons = nn.ModuleList(neuron() for _ in range(4))
        self.pool = nn.AdaptiveMaxPool1d(tokens) if tokens is not None and tokens != length else nn.Identity()
        self.rpe = ConvBN1d(dim, dim, 3, bias=bias)
        self.rpe_neuron = neuron()

    def forward(self, x: Tensor) -> Tensor:
        x = x.transpose(2, 3)  # [T, B, F, L]: features are channels
        for conv, sn in zip(self.stages, self.neurons):
            x = sn(conv(x))
        T = x.shape[0]
        x = unfold(self.pool(fold(x)), T)  # [T, B, D, N]
        x = x + self.rpe_neuron(self.rpe(x))
        return x.transpose(2, 3)  # [T, B, N, D]
