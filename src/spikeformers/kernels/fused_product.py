"""scale * Q (K^T V) on [.., H, N, d] in two Triton kernels (`triton_fused_product.py`), one forward and one
backward, reading and writing the operands' own strides; `attention/fused_product.py` decides where it applies
(head dimension d <= 64: the [d, d] fp32 products K^T V and its gradient live in registers).
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

from .launch import launch
from .pack import pack_bits, unpack_bits
from .triton_fused_product import q_kv_backward, q_kv_forward

__all__ = ["fused_q_kv"]


def _dense(x: Tensor) -> bool:
    """Does x tile its memory without gaps or overlap (so `empty_like(x)` has x's strides)?"""
    expected = 1
    for stride, size in sorted((s, n) for s, n in zip(x.stride(), x.shape) if n > 1):
        if stride != expected:
            return False
        expected *= size
    return True


def _heads(x: Tensor, dense: bool = True) -> Tensor:
    """x as [Z, H, N, d] with a unit last stride (a view where the leading dims merge), and dense when
    `dense` (the outputs are allocated in its layout)."""
    x = x.reshape(-1, *x.shape[-3:]) if x.dim() != 4 else x
    return x if x.stride(-1) == 1 and (not dense or _dense(x)) else x.contiguous()


def _config(q: Tensor, backward: bool = False) -> Tuple[dict, dict]:
    """fp32 operands multiply as torch's fp32 matmuls would (`torch.get_float32_matmul_precision`: IEEE
    by default, TF32 where the user allows it; on 16-bit operands the setting is ignored). The backward
    holds two [d, d] fp32 accumulators: 8 warps at d = 64 keep them in registers."""
    d = q.shape[-1]
    block_d = max(16, 1 << (d - 1).bit_length())
    precision = "ieee" if q.dtype == torch.float32 and torch.get_float32_matmul_precision() == "highest" else "tf32"
    return (dict(PRECISION=precision, BLOCK_N=64, BLOCK_D=block_d),
            dict(num_warps=8 if backward and block_d >= 64 else 4))


def _strides(*xs: Tensor) -> tuple:
    return tuple(s for x in xs for s in x.stride()[:3])


class _QKV(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, scale: float, bits: bool) -> Tensor:
        q4, k4, v4 = _heads(q), _heads(k), _heads(v)
        Z, H, N, d = q4.shape
        y = torch.empty_like(q4)  # q4's strides: it is dense
        constexprs, options = _config(q4)
        launch(q_kv_forward, (Z, H), (q4, k4, v4, y, N, d, float(scale), *_strides(q4, k4, v4, y)), constexprs, options)
        if bits:  # binary spikes: kept as one bit per element until backward
            packed = [pack_bits(t) for t in (q4, k4, v4)]
            ctx.save_for_backward(*(w for w, _, _ in packed))
            ctx.layouts = [(s, d) for _, s, d in packed]
        else:
            ctx.save_for_backward(q4, k4, v4)
            ctx.layouts = None
        ctx.scale, ctx.shape = float(scale), q.shape
        return y.view(q.shape)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: Tensor):
        q4, k4, v4 = ctx.saved_tensors
        if ctx.layouts is not None:
            q4, k4, v4 = (unpack_bits((w, s, d)) for w, (s, d) in zip((q4, k4, v4), ctx.layouts))
        g4 = _heads(g.to(q4.dtype), dense=False)
        Z, H, N, d = q4.shape
        gq, gk, gv = torch.empty_like(q4), torch.empty_like(k4), torch.empty_like(v4)
        constexprs, options = _config(q4, backward=True)
        launch(q_kv_backward, (Z, H), (q4, k4, v4, g4, gq, gk, gv, N, d, ctx.scale, *_strides(q4, k4, v4, g4)),
               constexprs, options)
        return gq.view(ctx.shape), gk.view(ctx.shape), gv.view(ctx.shape), None, None


def fused_q_kv(q: Tensor, k: Tensor, v: Tensor, scale: float, bits: bool = False) -> Tensor:
    """scale * q @ (k^T @ v) over the last two dims, batched over the rest. `bits`: q, k and v hold only 0 and
    1, so they are saved for backward as bits (`pack.py`; the same gradients)."""
    if torch.is_autocast_enabled(q.device.type):
        dt = torch.get_autocast_dtype(q.device.type)
        q, k, v = q.to(dt), k.to(dt), v.to(dt)
    return _QKV.apply(q, k, v, scale, bits and torch.is_grad_enabled())
