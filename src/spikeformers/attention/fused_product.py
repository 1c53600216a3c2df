"""`fused_q_kv(q, k, v, scale)`: scale * Q (K^T V) on [.., H, N, d] in two Triton kernels
(`kernels/fused_product.py`), one forward and one backward, reading and writing the operands' own strides.

`AttentionProduct` calls it for the "q_kv" order when `fused_applies` says so: a CUDA tensor (or, with
backend "triton", Triton's CPU interpreter), fp32/bf16/fp16, q, k, v of one shape with d <= 64, and no
`torch.compile` tracing (which gets torch's matmuls). Under autocast the operands are cast to the
autocast dtype first, as the matmuls they replace would be.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..kernels import load, usable  # imports no Triton until a kernel is about to run
from ..neurons.base import is_binary

__all__ = ["fused_applies", "fused_q_kv"]

_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
MAX_HEAD_DIM = 64  # kv and gkv live in registers: [d, d] fp32 each


def fused_applies(backend: str, q: Tensor, k: Tensor, v: Tensor) -> bool:
    if backend == "torch" or torch.compiler.is_compiling():
        return False
    if q.dim() < 3 or not (q.shape == k.shape == v.shape) or q.shape[-1] > MAX_HEAD_DIM:
        return False
    if not (q.dtype == k.dtype == v.dtype) or q.dtype not in _DTYPES:
        return False
    return usable(q, backend)


def fused_q_kv(q: Tensor, k: Tensor, v: Tensor, scale: float) -> Tensor:
    """scale * q @ (k^T @ v) over the last two dims, batched over the rest; operands tagged as binary spikes
    (`neurons.base.mark_binary`) are saved for backward as bits."""
    bits = is_binary(q) and is_binary(k) and is_binary(v)
    return load("fused_product").fused_q_kv(q, k, v, scale, bits)
