"""Triton kernels that store binary spikes as bits and read them back (`bitpack.py`): one pass each way, reading
or writing the spikes once (2 bytes per bf16 element) and the words once (1/8 byte per element)."""
from __future__ import annotations

import triton
import triton.language as tl

__all__ = ["pack_kernel", "unpack_kernel"]


@triton.jit
def pack_kernel(x_ptr, w_ptr, n, n_words, BLOCK: tl.constexpr):
    """word i = sum_j [x[8 i + j] != 0] << j, for the words of this program."""
    words = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    bits = tl.arange(0, 8)
    idx = words[:, None] * 8 + bits[None, :]
    x = tl.load(x_ptr + idx, mask=idx < n, other=0.0)
    w = tl.sum((x != 0).to(tl.int32) << bits[None, :], axis=1)
    tl.store(w_ptr + words, w.to(tl.uint8), mask=words < n_words)


@triton.jit
def unpack_kernel(w_ptr, y_ptr, n, n_words, BLOCK: tl.constexpr):
    """y[8 i + j] = bit j of word i, in y's dtype."""
    words = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    bits = tl.arange(0, 8)
    w = tl.load(w_ptr + words, mask=words < n_words, other=0).to(tl.int32)
    y = (w[:, None] >> bits[None, :]) & 1
    idx = words[:, None] * 8 + bits[None, :]
    tl.store(y_ptr + idx, y.to(tl.float32).to(y_ptr.dtype.element_ty), mask=idx < n)
