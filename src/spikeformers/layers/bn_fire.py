"""`bn_fire(bn, neuron, x, shape)`: `neuron(bn(x).view(shape))`, as one fused op where it can be; `fire(layer,
neuron, x)`: `neuron(layer(x))` through it, for the conv/Linear + BN layers of `time.py`.

Nearly every BatchNorm of the zoo feeds a neuron (conv/Linear -> BN -> LIF). Training on CUDA, the fused op
runs BN's statistics kernels and then `triton_bn_lif.py`: the neuron reads BN's input and applies BN's scale
and shift itself, and its backward produces BN's partial sums, so BN's output and its gradient are never read
back (26 -> 18 bytes per bf16 element in the step; measured speed: BENCHMARKS.md §8). Outputs, gradients and
running statistics are the unfused path's: the kernels round BN's output and its gradient to x's dtype
where the unfused path stores them (tests/test_bn_fire.py checks against torch's BatchNorm and the
reference LIF).

Where it applies: our BatchNorm1d/2d would take its kernels (training, CUDA, a channel-fastest input), the
neuron is an IFNode or LIFNode with a built-in surrogate whose backend allows a kernel, and nobody hooks
either module (the energy counter and the firing-rate monitor read the neuron's output). Elsewhere,
including PLIF, torch.compile and evaluation, it is the unfused `neuron(bn(x).view(shape))`.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn.modules import module as _module

from ..neurons.lif import IFNode, LIFNode
from .batchnorm import BatchNorm1d, BatchNorm2d, backward_from_sums, batch_statistics, kernels, zero_bias_grad

__all__ = ["CONFIG", "ENABLED", "bn_fire", "fire", "normalize"]

#: launch configuration (benchmarks/bn_fire_kernel.py sweeps it): elements per program tile (rows x channels,
#: at most `block_c` channels wide), warps, and for the backward about how many programs (each loops over
#: its rows, summing per channel; the chunk's H and inputs stay in registers, as in the LIF backward)
CONFIG = {"fwd_tile": 1024, "fwd_block_c": 64, "fwd_warps": 4,
          "bwd_tile": 512, "bwd_block_c": 64, "bwd_warps": 4, "bwd_programs": 1024}

#: False: never fuse (the benchmarks' "-unfused" settings compare both paths in one run)
ENABLED = True


def _hooked(m: nn.Module) -> bool:
    """Does a forward hook watch `m` (its own, or a global one)? Then it must run as a module call."""
    return bool(m._forward_hooks or m._forward_pre_hooks or _module._global_forward_hooks
                or _module._global_forward_pre_hooks)


def _kernel_params(bn: nn.Module, neuron: nn.Module, x: Tensor) -> Optional[tuple]:
    """The neuron's kernel parameters when the fused op applies to `neuron(bn(x))`, else None."""
    if not ENABLED or type(neuron) not in (IFNode, LIFNode) or not isinstance(bn, (BatchNorm1d, BatchNorm2d)):
        return None
    if neuron.backend == "torch" or not (x.is_cuda or neuron.backend == "triton") or not bn._kernels_apply(x):
        return None
    if _hooked(bn) or _hooked(neuron):
        return None
    return _ops()[0].lif_params(neuron)  # imports Triton: bn's kernels apply, so it is there


_OPS = None


def _ops():
    """`neurons.kernels.ops` and this op's kernels (`triton_bn_lif`), imported on first use."""
    global _OPS
    if _OPS is None:
        from ..neurons.kernels import ops
        from . import triton_bn_lif

        _OPS = ops, triton_bn_lif
    return _OPS


def _blocks(C: int, way: str):
    """(BLOCK_R, BLOCK_C) of the forward ("fwd") or backward ("bwd") tile for C channels."""
    bc = min(CONFIG[way + "_block_c"], 1 << (C - 1).bit_length())
    return max(1, CONFIG[way + "_tile"] // bc), bc


class _BNFireFunction(torch.autograd.Function):
    """`apply(x [M, C], weight, bias, running_mean, running_var, momentum, eps, pre_bias, T, params)` -> spikes
    [M, C]; `params` as `ops.lif_params`."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, running_mean: Tensor, running_var: Tensor,
                momentum: float, eps: float, pre_bias: Optional[Tensor], T: int, params: tuple) -> Tensor:
        launch, (ops, kern) = kernels()[0], _ops()
        stats = batch_statistics(x, weight, bias, running_mean, running_var, momentum, eps, pre_bias)
        mean, invstd, scale, shift = stats.unbind(0)
        M, C = x.shape
        R = M // T
        chunk = max(1, min(T, ops.CONFIG["chunk"]))  # steps per checkpointed chunk, as the LIF kernels
        n_chunks = -(-T // chunk)
        save = n_chunks > 1 and any(ctx.needs_input_grad[:3])  # grad mode is off inside forward
        ck = x.new_empty((n_chunks - 1, R * C), dtype=torch.float32) if save else ops._dummy(x)
        y = torch.empty_like(x)
        k, v_th, v_reset, alpha, kind, soft, detach, surrogate = params
        br, bc = _blocks(C, "fwd")
        launch(kern.bn_lif_fwd_kernel, (-(-R // br), -(-C // bc)),
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
        launch, kern = kernels()[0], _ops()[1]
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
        launch(kern.bn_lif_bwd_kernel, (P, nc),
               (x, gy.contiguous(), g, ck, scale, shift, mean, part, R, C, R * C, T, n_chunks, rows, float(k),
                float(v_th), float(v_reset), float(alpha), 0.5 / float(alpha)),
               dict(KIND=kind, SOFT=soft, DETACH=detach, SURR=surrogate, C=chunk, BLOCK_R=br, BLOCK_C=bc),
               dict(num_warps=CONFIG["bwd_warps"], enable_fp_fusion=False))
        gx, dw, db = backward_from_sums(part, g, x, weight, mean, invstd, ctx.needs_input_grad[0])
        return gx, dw, db, None, None, None, None, zero_bias_grad(ctx, weight, 7), None, None


def normalize(bn: nn.Module, x: Tensor, pre_bias: Optional[Tensor] = None) -> Tensor:
    """`bn(x)`, passing `pre_bias` only when there is one (torch's own BatchNorm, e.g. the SyncBatchNorm that
    `run.sync_bn` swaps in, takes none; the layers then add their bias themselves)."""
    return bn(x) if pre_bias is None else bn(x, pre_bias=pre_bias)


def bn_fire(bn: nn.Module, neuron: nn.Module, x: Tensor, shape: Tuple[int, ...],
            pre_bias: Optional[Tensor] = None) -> Tensor:
    """`neuron(bn(x).view(shape))` for BN's input x [T*B, ...] (time outermost) and the neuron's input shape
    [T, ...]; `pre_bias`: a bias x still lacks, which `bn` takes as `pre_bias` (see `BatchNorm1d.forward`)."""
    T = shape[0]
    params = _kernel_params(bn, neuron, x)
    rows = bn._as_rows(x) if params is not None else None
    if rows is None or rows.shape[0] < 2 or rows.shape[0] % T:
        return neuron(normalize(bn, x, pre_bias).view(shape))
    bn._count_batch(x)
    y = _BNFireFunction.apply(rows, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.momentum, bn.eps, pre_bias,
                              T, params)
    return bn._like_input(y, x).view(shape)


def fire(layer: nn.Module, neuron: nn.Module, x: Tensor) -> Tensor:
    """`neuron(layer(x))`, through `layer.fire` (BN and the neuron fused) where the layer has one and no hook
    watches it."""
    f = getattr(layer, "fire", None)
    return neuron(layer(x)) if f is None or _hooked(layer) else f(x, neuron)
