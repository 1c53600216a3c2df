"""Launchers of the bit-packing kernels (`triton_bitpack.py`): `pack(x) -> uint8 words`, `unpack(words, shape,
dtype)`, the layout of `pack.py`'s PyTorch version (bit j of word i is element 8 i + j of the flattened tensor)."""
from __future__ import annotations

import torch
from torch import Tensor

from .launch import launch
from .triton_bitpack import pack_kernel, unpack_kernel

__all__ = ["pack", "unpack", "BLOCK"]

BLOCK = 512  # words per program: 4,096 elements


def pack(x: Tensor) -> Tensor:
    x = x.contiguous()
    n = x.numel()
    words = torch.empty(-(-n // 8), dtype=torch.uint8, device=x.device)
    if n:
        launch(pack_kernel, (-(-words.numel() // BLOCK),), (x, words, n, words.numel()), dict(BLOCK=BLOCK),
               dict(num_warps=4))
    return words


def unpack(words: Tensor, shape: torch.Size, dtype: torch.dtype) -> Tensor:
    y = torch.empty(shape, dtype=dtype, device=words.device)
    n = y.numel()
    if n:
        launch(unpack_kernel, (-(-words.numel() // BLOCK),), (words, y, n, words.numel()), dict(BLOCK=BLOCK),
               dict(num_warps=4))
    return y
