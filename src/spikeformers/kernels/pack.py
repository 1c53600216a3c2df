"""Binary spikes stored as bits: what a layer saves for backward when its input is spikes.

Autograd keeps a Linear's input until backward; a spike tensor holds only 0 and 1, so 16 of its bf16 bits
(32 of fp32) carry one bit of information. `pack_bits` stores it as one bit per element (uint8 words) and
`unpack_bits` gives back the same values in the same dtype, so the gradients computed from it are the ones
the unpacked tensor gives, bit for bit. On CUDA one Triton kernel each way (`bitpack.py`), elsewhere plain
PyTorch operations with the same layout (bit j of word i is element 8 i + j of the flattened tensor).
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

from .gate import load, usable

__all__ = ["PackedSpikes", "pack_bits", "unpack_bits"]

PackedSpikes = Tuple[Tensor, torch.Size, torch.dtype]

_WEIGHTS = {}  # device -> the bit weights 1, 2, ..., 128 as uint8


def _weights(device: torch.device) -> Tensor:
    w = _WEIGHTS.get(device)
    if w is None:
        w = _WEIGHTS[device] = (2 ** torch.arange(8, device=device)).to(torch.uint8)
    return w


def pack_bits(x: Tensor, backend: str = "auto") -> PackedSpikes:
    """x (values 0 and 1, any shape and float dtype) as (uint8 words, shape, dtype): 8 elements per byte.
    `backend`: "auto" (the kernel on CUDA), "torch", "triton" (the kernel; on the CPU in Triton's interpreter)."""
    if usable(x, backend):
        return load("bitpack").pack(x), x.shape, x.dtype
    flat = x.reshape(-1)
    pad = -flat.numel() % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    bits = (flat.view(-1, 8) != 0).to(torch.uint8)
    return (bits * _weights(x.device)).sum(-1, dtype=torch.uint8), x.shape, x.dtype


def unpack_bits(packed: PackedSpikes, backend: str = "auto") -> Tensor:
    """The tensor `pack_bits` stored (contiguous)."""
    words, shape, dtype = packed
    if usable(words, backend):
        return load("bitpack").unpack(words, shape, dtype)
    bits = (words[:, None] & _weights(words.device)) != 0
    n = 1
    for s in shape:
        n *= s
    return bits.reshape(-1)[:n].to(dtype).view(shape)
