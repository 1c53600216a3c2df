"""`wkv(w, u, k, v)`: RWKV-4's WKV recurrence (SpikeGPT's token mixing) in two Triton kernels
(`triton_wkv.py`), one forward and one backward, each one pass over the tokens with the state in registers.

The chunked PyTorch form it replaces (`models/spikegpt.py`) builds [B, N / L, L, L + 1, C] fp32 softmax
tensors (428 MB each at batch 64 x 256 tokens x 384 channels) and loops over the chunks in Python; here
each (sample, channel) reads k and v once forward and k, v, dL/dy and the saved y, log D once backward.
Arithmetic in fp32 whatever the input dtype (as the official kernel and the reference compute), output in
v's dtype.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

from .launch import launch
from .triton_wkv import wkv_bwd_kernel, wkv_fwd_kernel

__all__ = ["wkv"]

BLOCK_C = 32  # channels per program (one warp): B x C / 32 programs, each walking all N tokens
UNROLL = 8    # tokens per loop iteration


def _grid(B: int, C: int) -> Tuple[int, int]:
    return B, -(-C // BLOCK_C)


class _WKV(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w: Tensor, u: Tensor, k: Tensor, v: Tensor, save: bool) -> Tensor:
        B, N, C = v.shape
        dtypes = (w.dtype, u.dtype, k.dtype)  # of the inputs: their gradients are returned in them
        w32, u32 = w.float().contiguous(), u.float().contiguous()
        k, v = k.to(v.dtype).contiguous(), v.contiguous()
        y = torch.empty_like(v)
        ys = torch.empty(v.shape, device=v.device, dtype=torch.float32) if save else y
        lse = torch.empty_like(ys) if save else y
        launch(wkv_fwd_kernel, _grid(B, C), (w32, u32, k, v, y, ys, lse, N, C),
               dict(SAVE=save, BLOCK_C=BLOCK_C, UNROLL=UNROLL), dict(num_warps=1))
        if save:
            ctx.save_for_backward(w32, u32, k, v, ys, lse)
            ctx.dtypes = dtypes
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: Tensor):
        w32, u32, k, v, ys, lse = ctx.saved_tensors
        B, N, C = v.shape
        g = g.contiguous()
        gk, gv = torch.empty_like(k), torch.empty_like(v)
        gw = torch.empty(B, C, device=v.device, dtype=torch.float32)
        gu = torch.empty_like(gw)
        launch(wkv_bwd_kernel, _grid(B, C), (w32, u32, k, v, g, ys, lse, gk, gv, gw, gu, N, C),
               dict(BLOCK_C=BLOCK_C, UNROLL=UNROLL), dict(num_warps=1))
        w_dtype, u_dtype, k_dtype = ctx.dtypes
        return gw.sum(0).to(w_dtype), gu.sum(0).to(u_dtype), gk.to(k_dtype), gv, None


def wkv(w: Tensor, u: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """WKV of every token: k, v [B, N, C] (any float dtype, computed in fp32); w (< 0), u [C] -> [B, N, C] in v's
    dtype (k is cast to it)."""
    if v.dim() != 3 or k.shape != v.shape or w.shape != (v.shape[-1],) or u.shape != w.shape:
        raise ValueError(f"wkv: k, v must be [B, N, C] and w, u [C]; got k {tuple(k.shape)}, v {tuple(v.shape)}, "
                         f"w {tuple(w.shape)}, u {tuple(u.shape)}")
    # needs_input_grad stays True under no_grad (evaluation): ask the grad mode, outside forward, instead
    save = torch.is_grad_enabled() and any(t.requires_grad for t in (w, u, k, v))
    return _WKV.apply(w, u, k, v, save)
