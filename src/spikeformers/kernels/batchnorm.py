"""Training-mode BatchNorm on a channel-fastest `[M, C]` view through the kernels of `triton_batchnorm.py`:
`batch_norm` (the autograd op `layers/batchnorm.py` calls), and the statistics and backward pieces the fused
BatchNorm + neuron op (`bn_fire.py`) shares. Design and measured speed: `triton_batchnorm.py`.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from . import triton_batchnorm as tbn
from .launch import launch

__all__ = ["batch_norm", "batch_statistics", "backward_from_sums", "zero_bias_grad", "DTYPES"]

DTYPES = (torch.float32, torch.bfloat16, torch.float16)

_FINAL = dict(BLOCK_P=64, BLOCK_C=32)  # the finalize kernels: 32 channels per program
_OPTS = dict(num_warps=4)


def _block_c(C: int) -> int:
    """Channels per program of the partial-sum and affine kernels."""
    return min(128, max(16, 1 << (C - 1).bit_length()))


def _plan(M: int, C: int):
    """(programs over rows, rows per program, channel blocks, BLOCK_C) for the partial sums: about 512
    programs, each summing a slab of rows that is a multiple of the 32-row tile."""
    bc = _block_c(C)
    nc = -(-C // bc)
    P = max(1, min(-(-M // 32), 512 // nc))
    rows = -(-M // (32 * P)) * 32
    return -(-M // rows), rows, nc, bc


def batch_statistics(x: Tensor, weight: Tensor, bias: Tensor, running_mean: Tensor, running_var: Tensor,
                     momentum: float, eps: float, pre_bias: Optional[Tensor]) -> Tensor:
    """BN's forward statistics of x [M, C] as fp32 [4, C] (mean, invstd, scale, shift: the output is
    x * scale + shift); updates the running statistics in place."""
    M, C = x.shape
    P, rows, nc, bc = _plan(M, C)
    part = x.new_empty((2, P, C), dtype=torch.float32)
    stats = x.new_empty((4, C), dtype=torch.float32)
    mean, invstd, scale, shift = stats.unbind(0)
    launch(tbn.partial_sums, (P, nc), (x, x, x, part, M, C, rows), dict(PRODUCT=False, BLOCK_M=32, BLOCK_C=bc), _OPTS)
    pre = x if pre_bias is None else pre_bias
    launch(tbn.finalize_forward, (-(-C // 32),), (part, x, weight, bias, running_mean, running_var, mean, invstd, scale,
                                              shift, pre, part.shape[1], M, C, float(momentum), float(eps)),
           dict(UPDATE=True, PRE=pre_bias is not None, **_FINAL), _OPTS)
    return stats


def backward_from_sums(part: Tensor, gy: Tensor, x: Tensor, weight: Tensor, mean: Tensor, invstd: Tensor,
                       need_gx: bool) -> Tuple[Optional[Tensor], Tensor, Tensor]:
    """(dL/dx or None, dL/dweight, dL/dbias) from the [2, P, C] partial sums of dL/dy and dL/dy * (x - mean)."""
    M, C = x.shape
    coef = x.new_empty((5, C), dtype=torch.float32)
    dw, db, a, b, c = coef.unbind(0)
    launch(tbn.finalize_backward, (-(-C // 32),), (part, weight, mean, invstd, dw, db, a, b, c, part.shape[1], M, C),
           dict(_FINAL), _OPTS)
    gx = None
    if need_gx:
        bc = _block_c(C)
        gx = torch.empty_like(x)
        launch(tbn.affine, (-(-M // 64), -(-C // bc)), (gy, x, gx, a, b, c, M, C), dict(TWO=True, BLOCK_M=64, BLOCK_C=bc),
               _OPTS)
    return gx, dw.to(weight.dtype), db.to(weight.dtype)


class _BatchNormFunction(torch.autograd.Function):
    """`apply(x [M, C], weight, bias, running_mean, running_var, momentum, eps, pre_bias)`; updates the
    running statistics in place. `pre_bias` (or None): a per-channel bias that x still lacks (see
    `_KernelForward.forward`); its gradient is exactly zero."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, running_mean: Tensor, running_var: Tensor,
                momentum: float, eps: float, pre_bias: Optional[Tensor] = None) -> Tensor:
        M, C = x.shape
        mean, invstd, scale, shift = batch_statistics(x, weight, bias, running_mean, running_var, momentum, eps,
                                                      pre_bias).unbind(0)
        y = torch.empty_like(x)
        bc = _block_c(C)
        launch(tbn.affine, (-(-M // 64), -(-C // bc)), (x, x, y, scale, scale, shift, M, C),
               dict(TWO=False, BLOCK_M=64, BLOCK_C=bc), _OPTS)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.pre_bias = pre_bias is not None
        return y

    @staticmethod
    def backward(ctx, gy: Tensor):
        x, weight, mean, invstd = ctx.saved_tensors
        gy = gy.contiguous()
        M, C = x.shape
        P, rows, nc, bc = _plan(M, C)
        part = x.new_empty((2, P, C), dtype=torch.float32)
        launch(tbn.partial_sums, (P, nc), (gy, x, mean, part, M, C, rows), dict(PRODUCT=True, BLOCK_M=32, BLOCK_C=bc), _OPTS)
        gx, dw, db = backward_from_sums(part, gy, x, weight, mean, invstd, ctx.needs_input_grad[0])
        return gx, dw, db, None, None, None, None, zero_bias_grad(ctx, weight, 7)


def zero_bias_grad(ctx, weight: Tensor, index: int) -> Optional[Tensor]:
    """The folded bias's gradient: batch statistics remove any per-channel shift of x, so it is exactly zero."""
    return weight.new_zeros(weight.shape) if ctx.pre_bias and ctx.needs_input_grad[index] else None


def batch_norm(x: Tensor, weight: Tensor, bias: Tensor, running_mean: Tensor, running_var: Tensor, momentum: float,
               eps: float, pre_bias: Optional[Tensor]) -> Tensor:
    """BN's training forward of x [M, C] (channel-fastest) with autograd; updates the running statistics in
    place. `pre_bias` (or None): a per-channel bias that x still lacks; its gradient is exactly zero."""
    return _BatchNormFunction.apply(x, weight, bias, running_mean, running_var, momentum, eps, pre_bias)
