"""`bn_fire(x, ...)`: training-mode BatchNorm of x [M, C] (channel-fastest, time outermost) and the IF/LIF
neuron after it as one op, through the kernels of `triton_bn_fire.py` (which reuse the LIF kernels' walk);
`layers/bn_fire.py` decides where it applies. BN's statistics and backward come from `batchnorm.py`.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .batchnorm import backward_from_sums, batch_statistics, zero_bias_grad
from .launch import launch
from .neuron import CONFIG as NEURON_CONFIG
from .neuron import _dummy
from .triton_bn_fire import bn_lif_bwd_kernel, bn_lif_fwd_kernel

__all__ = ["CONFIG", "bn_fire"]

#: launch configuration (benchmarks/bn_fire_kernel.py sweeps it): elements per program tile (rows x channels,
#: at most `block_c` channels wide), warps, and for the backward about how many programs (each loops over
#: its rows, summing per channel; the chunk's H and inputs stay in registers, as in the LIF backward)
CONFIG = {"fwd_tile": 1024, "fwd_block_c": 64, "fwd_warps": 4,
          "bwd_tile": 512, "bwd_block_c": 64, "bwd_warps": 4, "bwd_programs": 1024}


def _blocks(C: int, way: str):
    """(BLOCK_R, BLOCK_C) of the forward ("fwd") or backward ("bwd") tile for C channels."""
    bc = min(CONFIG[way + "_block_c"], 1 << (C - 1).bit_length())
    return max(1, CONFIG[way + "_tile"] // bc), bc


class _BNFireFunction(torch.autograd.Function):
    """`apply(x [M, C], weight, bias, running_mean, running_var, momentum, eps, pre_bias, T, params)` -> spikes
    [M, C]; `params` as `neuron.lif`'s."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, running_mean: Tensor, running_var: Tensor,
                momentum: float, eps: float, pre_bias: Optional[Tensor], T: int, params: tuple) -> Tensor:
        stats = batch_statistics(x, weight, bias, running_mean, running_var, momentum, eps, pre_bias)
        mean, invstd, scale, shift = stats.unbind(0)
        M, C = x.shape
        R = M // T
        chunk = max(1, min(T, NEURON_CONFIG["chunk"]))  # steps per checkpointed chunk, as the LIF kernels
        n_chunks = -(-T // chunk)
        save = n_chunks > 1 and any(ctx.needs_input_grad[:3])  # grad mode is off inside forward
        ck = x.new_empty((n_chunks - 1, R * C), dtype=torch.float32) if save else _dummy(x)
        y = torch.empty_like(x)
        k, v_th, v_reset, alpha, kind, soft, detach, surrogate = params
        br, bc = _blocks(C, "fwd")
        launch(bn_lif_fwd_kernel, (-(-R // br), -(-C // bc)),
               (x, y, ck, scale, shift, R, C, R * C, T, n_chunks, n_chunks - 1 if save else 0, float(k), float(v_th),
                float(v_reset)),
               dict(KIND=kind, SOFT=soft, C=chunk, BLOCK_R=br, BLOCK_C=bc),
               dict(num_warps=CONFIG["fwd_warps"], enable_fp_fusion=False))
        ctx.save_for_backward(x, weight, stats, ck)
        ctx.pre_bias = pre_bias is not None
        ctx.layout, ctx.params = (T, chunk, n_chunks), params
        return y

    @staticmethod
    def backward(ctx, gy: Tensor):
        x, weight, stats, ck = ctx.saved_tensors
        mean, invstd, scale, shift = stats.unbind(0)
        T, chunk, n_chunks = ctx.layout
        k, v_th, v_reset, alpha, kind, soft, detach, surrogate = ctx.params
        M, C = x.shape
        R = M // T
        br, bc = _blocks(C, "bwd")
        nc = -(-C // bc)
        P = max(1, min(-(-R // br), CONFIG["bwd_programs"] // nc))
        rows = -(-R // (br * P)) * br
        P = -(-R // rows)
        part = x.new_empty((2, P, C), dtype=torch.float32)
        g = torch.empty_like(x)
        launch(bn_lif_bwd_kernel, (P, nc),
               (x, gy.contiguous(), g, ck, scale, shift, mean, part, R, C, R * C, T, n_chunks, rows, float(k),
                float(v_th), float(v_reset), float(alpha), 0.5 / float(alpha)),
               dict(KIND=kind, SOFT=soft, DETACH=detach, SURR=surrogate, C=chunk, BLOCK_R=br, BLOCK_C=bc),
               dict(num_warps=CONFIG["bwd_warps"], enable_fp_fusion=False))
        gx, dw, db = backward_from_sums(part, g, x, weight, mean, invstd, ctx.needs_input_grad[0])
        return gx, dw, db, None, None, None, None, zero_bias_grad(ctx, weight, 7), None, None


def bn_fire(x: Tensor, weight: Tensor, bias: Tensor, running_mean: Tensor, running_var: Tensor, momentum: float,
            eps: float, pre_bias: Optional[Tensor], T: int, params: tuple) -> Tensor:
    """Spikes [M, C] of the neuron fed by BN's training output of x [M, C] (M = T * rows), with autograd;
    updates BN's running statistics in place. params: the neuron's, as `neuron.lif` takes them."""
    return _BNFireFunction.apply(x, weight, bias, running_mean, running_var, momentum, eps, pre_bias, T, params)
