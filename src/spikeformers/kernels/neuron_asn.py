"""Launchers, autograd function and custom ops for the ASN kernels (`triton_asn.py`); see neuron.py for
the two call paths (eager autograd.Function, custom ops under torch.compile)."""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

from .neuron import CONFIG, DTYPES, SURROGATES, _dummy, _launch, _layout, _like, out_like, walkable
from .triton_asn import asn_bwd_kernel, asn_fwd_kernel

__all__ = ["DTYPES", "SURROGATES", "asn_forward", "asn_backward", "ASNFunction", "asn"]


def asn_forward(x: Tensor, k_m: Tensor, k_a: Tensor, v_th: float, v_reset: float, delta: float, soft: bool,
                save: bool) -> Tuple[Tensor, Tensor]:
    """Spikes (x's dtype and layout) and the fp32 (V, theta) chunk checkpoints [n_chunks - 1, 2, N]."""
    T, N, C, n_chunks, grid = _layout(x)
    xk = walkable(x, contiguous=k_m.dim() > 0)  # per-channel constants are indexed as column % channels
    y = torch.empty_like(xk)
    ck = x.new_empty((n_chunks - 1 if save else 0, 2, N), dtype=torch.float32)
    if x.numel():
        _launch(asn_fwd_kernel, grid, (xk, y, ck if ck.numel() else _dummy(x), k_m, k_a, N, T, n_chunks, ck.shape[0],
                                       k_m.numel(), float(v_th), float(v_reset), float(delta)),
                SOFT=soft, PER_CHANNEL=k_m.dim() > 0, C=C)
    return out_like(x, y), ck


def asn_backward(gy: Tensor, x: Tensor, k_m: Tensor, k_a: Tensor, ck: Tensor, v_th: float, v_reset: float, delta: float,
                 alpha: float, soft: bool, detach: bool, surrogate: int, need_gk: bool) -> Tuple[Tensor, Tensor, Tensor]:
    """(dL/dx, dL/dk_m, dL/dk_a); the k gradients have k's shape, fp32 (zeros unless need_gk)."""
    T, N, C, n_chunks, grid = _layout(x, backward=True)
    xk = walkable(x, contiguous=k_m.dim() > 0)
    gy = _like(xk, gy)
    gx = torch.empty_like(xk)
    cols = x.new_empty((2, N if need_gk else 1), dtype=torch.float32)
    if x.numel():
        _launch(asn_bwd_kernel, grid, (xk, gy, gx, ck if ck.numel() else cols, k_m, k_a, cols[0], cols[1], N, T, n_chunks,
                                       k_m.numel(), float(v_th), float(v_reset), float(delta), float(alpha),
                                       0.5 / float(alpha)),
                backward=True, SOFT=soft, DETACH=detach, SURR=surrogate, PER_CHANNEL=k_m.dim() > 0, NEED_GK=need_gk, C=C)
    gx = out_like(x, gx)
    if not need_gk or not x.numel():
        return gx, torch.zeros_like(k_m, dtype=torch.float32), torch.zeros_like(k_a, dtype=torch.float32)
    if k_m.dim() == 0:  # one scalar pair: sum every column
        return gx, cols[0].sum(), cols[1].sum()
    C_K = k_m.numel()  # columns are channel-fastest (x is contiguous)
    return gx, cols[0].view(-1, C_K).sum(0), cols[1].view(-1, C_K).sum(0)


class ASNFunction(torch.autograd.Function):
    """Eager autograd wrapper: `apply(x, k_m, k_a, (v_th, v_reset, delta, alpha, soft, detach, surrogate))`."""

    @staticmethod
    def forward(ctx, x: Tensor, k_m: Tensor, k_a: Tensor, params: tuple) -> Tensor:
        v_th, v_reset, delta, alpha, soft, detach, surrogate = params
        y, ck = asn_forward(x, k_m, k_a, v_th, v_reset, delta, soft, True)
        ctx.save_for_backward(x, k_m, k_a, ck)
        ctx.params = params
        return y

    @staticmethod
    def backward(ctx, gy: Tensor):
        x, k_m, k_a, ck = ctx.saved_tensors
        v_th, v_reset, delta, alpha, soft, detach, surrogate = ctx.params
        need_gk = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        gx, gkm, gka = asn_backward(gy, x, k_m, k_a, ck, v_th, v_reset, delta, alpha, soft, detach, surrogate, need_gk)
        return gx, gkm.to(k_m.dtype) if need_gk else None, gka.to(k_a.dtype) if need_gk else None, None


@torch.library.custom_op("spikeformers::asn_fwd", mutates_args=())
def _asn_fwd_op(x: Tensor, k_m: Tensor, k_a: Tensor, v_th: float, v_reset: float, delta: float, alpha: float, soft: bool,
                detach: bool, surrogate: int) -> Tuple[Tensor, Tensor]:
    return asn_forward(x, k_m, k_a, v_th, v_reset, delta, soft, True)


@_asn_fwd_op.register_fake
def _(x, k_m, k_a, v_th, v_reset, delta, alpha, soft, detach, surrogate):
    T = x.shape[0]
    C = max(1, min(T, CONFIG["chunk"]))
    return torch.empty_like(x), x.new_empty(((T + C - 1) // C - 1, 2, x.numel() // T), dtype=torch.float32)


@torch.library.custom_op("spikeformers::asn_bwd", mutates_args=())
def _asn_bwd_op(gy: Tensor, x: Tensor, k_m: Tensor, k_a: Tensor, ck: Tensor, v_th: float, v_reset: float, delta: float,
                alpha: float, soft: bool, detach: bool, surrogate: int, need_gk: bool) -> Tuple[Tensor, Tensor, Tensor]:
    return asn_backward(gy, x, k_m, k_a, ck, v_th, v_reset, delta, alpha, soft, detach, surrogate, need_gk)


@_asn_bwd_op.register_fake
def _(gy, x, k_m, k_a, ck, v_th, v_reset, delta, alpha, soft, detach, surrogate, need_gk):
    return (torch.empty_like(x), torch.empty_like(k_m, dtype=torch.float32),
            torch.empty_like(k_a, dtype=torch.float32))


def _asn_setup(ctx, inputs, output):
    x, k_m, k_a, v_th, v_reset, delta, alpha, soft, detach, surrogate = inputs
    ctx.save_for_backward(x, k_m, k_a, output[1])
    ctx.params = (v_th, v_reset, delta, alpha, soft, detach, surrogate)


def _asn_op_backward(ctx, gy, _gck):
    x, k_m, k_a, ck = ctx.saved_tensors
    need_gk = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
    gx, gkm, gka = torch.ops.spikeformers.asn_bwd(gy, x, k_m, k_a, ck, *ctx.params, need_gk)
    return (gx, gkm.to(k_m.dtype) if need_gk else None, gka.to(k_a.dtype) if need_gk else None) + (None,) * 7


_asn_fwd_op.register_autograd(_asn_op_backward, setup_context=_asn_setup)


def asn(x: Tensor, k_m: Tensor, k_a: Tensor, params: tuple) -> Tensor:
    """ASN spikes of x [T, ...] (spike mode). k_m, k_a: the per-step leak and threshold relaxation (scalars, or
    per channel of x's last axis); params = (v_th, v_reset, delta, alpha, soft, detach, surrogate id)."""
    if torch.compiler.is_compiling():
        return torch.ops.spikeformers.asn_fwd(x, k_m, k_a, *params)[0]
    if torch.is_grad_enabled() and (x.requires_grad or k_m.requires_grad or k_a.requires_grad):
        return ASNFunction.apply(x, k_m, k_a, params)
    return asn_forward(x, k_m, k_a, params[0], params[1], params[2], params[4], False)[0]
