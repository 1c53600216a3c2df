"""Launchers, autograd functions and `torch.library` custom ops around the Triton neuron kernels
(`triton_lif.py`, `triton_ternary.py`; ASN's live in `neuron_asn.py`).

Entry points `lif(x, k_tensor, params)` and `ternary(x, amplitude, params)` take the neuron's parameters
as plain numbers (each neuron class supplies its own: `LIFNode.kernel_params()`). Two call paths share the
same launchers:
- eager: `torch.autograd.Function`s (`LIFFunction`, `TernaryFunction`), the cheapest call path;
- `torch.compile`: custom ops `spikeformers::lif_fwd/lif_bwd/ternary_fwd/ternary_bwd/asn_fwd/asn_bwd` with fake
  (meta) implementations and `register_autograd`, so a compiled model keeps the kernels and has no
  graph break. The entry points pick the second while Dynamo traces.

Importing this module imports Triton; the gate (`gate.py`) imports it only when a kernel is about to run
(a CUDA tensor, or `backend="triton"` under `TRITON_INTERPRET=1`).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from .launch import launch
from .triton_lif import lif_bwd_kernel, lif_fwd_kernel
from .triton_ternary import ternary_bwd_kernel, ternary_fwd_kernel

__all__ = ["CONFIG", "DTYPES", "SURROGATES", "lif", "ternary", "lif_forward", "lif_backward", "ternary_forward",
           "ternary_backward", "LIFFunction", "TernaryFunction"]

#: launch configuration: columns per program (forward, backward), warps per program, steps per
#: recomputed chunk. The backward holds a chunk's H in registers: 512 columns x 4 warps = 4 per thread
#: keeps every variant under 255 registers without spills at chunk 8 (ptxas, sm_90; NOTES.md).
CONFIG = {"block": 1024, "block_bwd": 512, "num_warps": 4, "chunk": 8}
DTYPES = (torch.float32, torch.bfloat16, torch.float16)
#: the surrogate gradients the kernels compute, by their id (the `SURR` constexpr of the kernels)
SURROGATES = ("sigmoid", "atan", "triangle", "rectangle", "ste")


def _layout(x: Tensor, backward: bool = False) -> Tuple[int, int, int, int, Tuple[int]]:
    """T, N (columns), C (steps per chunk), number of chunks, grid. Plain integer arithmetic: this runs
    twice per neuron call, and `triton.cdiv` called from Python goes through Triton's JIT wrapper."""
    T = x.shape[0]
    N = x.numel() // T
    C = max(1, min(T, CONFIG["chunk"]))
    return T, N, C, -(-T // C), (-(-N // CONFIG["block_bwd" if backward else "block"]),)


def _launch(kernel, grid: Tuple[int], args: tuple, backward: bool = False, **constexprs) -> None:
    """Launch with the configured block and warps (launch.py: less host time than `kernel[grid](...)`)."""
    constexprs["BLOCK"] = CONFIG["block_bwd" if backward else "block"]
    # no fused multiply-add: the forward must round exactly like the reference's separate ops
    launch(kernel, grid, args, constexprs, dict(num_warps=CONFIG["num_warps"], enable_fp_fusion=False))


_DUMMIES: dict = {}


def _dummy(x: Tensor) -> Tensor:
    """A 1-element fp32 stand-in (one per device, reused) for a pointer argument the kernel never
    dereferences: an unsaved checkpoint or an unneeded parameter gradient. Allocating none per call keeps
    the eager call's host time down (NOTES.md)."""
    d = _DUMMIES.get(x.device)
    if d is None:
        d = _DUMMIES[x.device] = torch.empty(1, dtype=torch.float32, device=x.device)
    return d


def _no_checkpoints(x: Tensor) -> Tensor:
    """The empty checkpoints tensor a custom op returns where the eager path has None (ops return tensors)."""
    return x.new_empty((0, x.numel() // x.shape[0]), dtype=torch.float32)


def _checkpoints(x: Tensor, shape: Tuple[int, ...], save: bool) -> Optional[Tensor]:
    """The fp32 chunk checkpoints buffer, or None when nothing is saved (no grad, or one chunk: T <= C)."""
    return x.new_empty(shape, dtype=torch.float32) if save and shape[0] > 0 else None


def _param_grad(x: Tensor, programs: int, need: bool) -> Optional[Tensor]:
    """Buffer for a parameter gradient's per-program fp32 partial sums (every program stores its own, so
    no zero fill; the caller sums them: deterministic), or None when the gradient is not needed."""
    return x.new_empty(programs, dtype=torch.float32) if need else None


def _like(x: Tensor, g: Tensor) -> Tensor:
    """`g` in `x`'s memory layout (the kernels index both with the same flat offsets)."""
    return g if g.stride() == x.stride() else torch.empty_like(x).copy_(g)


def _dense(x: Tensor, dims) -> Tuple[bool, int]:
    """(do `dims` of x tile memory without gaps or overlap?, their element count)."""
    expected = 1
    for stride, size in sorted((x.stride(d), x.shape[d]) for d in dims if x.shape[d] > 1):
        if stride != expected:
            return False, expected
        expected *= size
    return True, expected


def walkable(x: Tensor, contiguous: bool = False) -> Tensor:
    """x itself if the kernels can walk it as [T, N] at flat offsets t * N + i (dense, time outermost:
    contiguous, or channels_last within each step), else a contiguous copy."""
    if contiguous or x.is_contiguous():
        return x.contiguous()
    dense, n = _dense(x, range(1, x.dim()))
    return x if dense and (x.shape[0] == 1 or x.stride(0) == n) else x.contiguous()


def out_like(x: Tensor, out: Tensor) -> Tensor:
    """`out`, computed in `walkable(x)`'s layout, in the layout `torch.empty_like(x)` gives (x's own
    when x is dense, else contiguous): what the fake implementations promise torch.compile."""
    if out.stride() == x.stride() or not _dense(x, range(x.dim()))[0]:
        return out
    return torch.empty_like(x).copy_(out)


# ------------------------------------------------------------------------------------------------ LIF
def lif_forward(x: Tensor, k_tensor: Optional[Tensor], k: float, v_th: float, v_reset: float, kind: int,
                soft: bool, save: bool) -> Tuple[Tensor, Optional[Tensor]]:
    """Spikes `[T, ...]` (x's dtype and layout) and the fp32 chunk checkpoints `[n_chunks - 1, N]` (None
    when nothing is saved)."""
    T, N, C, n_chunks, grid = _layout(x)
    xk = walkable(x)
    y = torch.empty_like(xk)
    ck = _checkpoints(x, (n_chunks - 1, N), save)
    if N:
        _launch(lif_fwd_kernel, grid, (xk, y, _dummy(x) if ck is None else ck, y if k_tensor is None else k_tensor, N, T,
                                       n_chunks, 0 if ck is None else n_chunks - 1, float(k), float(v_th), float(v_reset)),
                KIND=kind, K_PTR=k_tensor is not None, SOFT=soft, C=C)
    return out_like(x, y), ck


def lif_backward(gy: Tensor, x: Tensor, k_tensor: Optional[Tensor], ck: Optional[Tensor], k: float, v_th: float,
                 v_reset: float, alpha: float, kind: int, soft: bool, detach: bool, surrogate: int,
                 need_gk: bool) -> Tuple[Tensor, Optional[Tensor]]:
    """(dL/dx in x's dtype and layout, dL/dk as a 0-dim fp32 tensor or None unless need_gk)."""
    T, N, C, n_chunks, grid = _layout(x, backward=True)
    xk = walkable(x)
    gy = _like(xk, gy)
    gx = torch.empty_like(xk)
    partial = _param_grad(x, grid[0], need_gk)
    if N:
        dummy = _dummy(x)
        _launch(lif_bwd_kernel, grid, (xk, gy, gx, dummy if ck is None or not ck.numel() else ck,
                                       gx if k_tensor is None else k_tensor, dummy if partial is None else partial, N, T,
                                       n_chunks, float(k), float(v_th), float(v_reset), float(alpha), 0.5 / float(alpha)),
                backward=True, KIND=kind, K_PTR=k_tensor is not None, SOFT=soft, DETACH=detach, SURR=surrogate,
                NEED_GK=need_gk, C=C)
    return out_like(x, gx), (None if partial is None else partial.sum())


class LIFFunction(torch.autograd.Function):
    """Eager autograd wrapper: `apply(x, k_tensor, params)` with params = (k, v_th, v_reset, alpha, kind,
    soft, detach, surrogate)."""

    @staticmethod
    def forward(ctx, x: Tensor, k_tensor: Optional[Tensor], params: tuple) -> Tensor:
        k, v_th, v_reset, alpha, kind, soft, detach, surrogate = params
        y, ck = lif_forward(x, k_tensor, k, v_th, v_reset, kind, soft, True)
        ctx.save_for_backward(x, k_tensor, ck)
        ctx.params = params
        return y

    @staticmethod
    def backward(ctx, gy: Tensor):
        x, k_tensor, ck = ctx.saved_tensors
        k, v_th, v_reset, alpha, kind, soft, detach, surrogate = ctx.params
        need_gk = k_tensor is not None and ctx.needs_input_grad[1]
        gx, gk = lif_backward(gy, x, k_tensor, ck, k, v_th, v_reset, alpha, kind, soft, detach, surrogate, need_gk)
        return gx, (None if gk is None else gk.reshape(k_tensor.shape).to(k_tensor.dtype)), None


@torch.library.custom_op("spikeformers::lif_fwd", mutates_args=())
def _lif_fwd_op(x: Tensor, k_tensor: Optional[Tensor], k: float, v_th: float, v_reset: float, alpha: float, kind: int,
                soft: bool, detach: bool, surrogate: int) -> Tuple[Tensor, Tensor]:
    y, ck = lif_forward(x, k_tensor, k, v_th, v_reset, kind, soft, True)
    return y, _no_checkpoints(x) if ck is None else ck


@_lif_fwd_op.register_fake
def _(x, k_tensor, k, v_th, v_reset, alpha, kind, soft, detach, surrogate):
    T = x.shape[0]
    C = max(1, min(T, CONFIG["chunk"]))
    return torch.empty_like(x), x.new_empty(((T + C - 1) // C - 1, x.numel() // T), dtype=torch.float32)


@torch.library.custom_op("spikeformers::lif_bwd", mutates_args=())
def _lif_bwd_op(gy: Tensor, x: Tensor, k_tensor: Optional[Tensor], ck: Tensor, k: float, v_th: float, v_reset: float,
                alpha: float, kind: int, soft: bool, detach: bool, surrogate: int, need_gk: bool) -> Tuple[Tensor, Tensor]:
    gx, gk = lif_backward(gy, x, k_tensor, ck, k, v_th, v_reset, alpha, kind, soft, detach, surrogate, need_gk)
    return gx, x.new_zeros((), dtype=torch.float32) if gk is None else gk


@_lif_bwd_op.register_fake
def _(gy, x, k_tensor, ck, k, v_th, v_reset, alpha, kind, soft, detach, surrogate, need_gk):
    return torch.empty_like(x), x.new_empty((), dtype=torch.float32)


def _lif_setup(ctx, inputs, output):
    x, k_tensor, k, v_th, v_reset, alpha, kind, soft, detach, surrogate = inputs
    ctx.save_for_backward(x, k_tensor, output[1])
    ctx.params = (k, v_th, v_reset, alpha, kind, soft, detach, surrogate)


def _lif_op_backward(ctx, gy, _gck):
    x, k_tensor, ck = ctx.saved_tensors
    k, v_th, v_reset, alpha, kind, soft, detach, surrogate = ctx.params
    need_gk = k_tensor is not None and ctx.needs_input_grad[1]
    gx, gk = torch.ops.spikeformers.lif_bwd(gy, x, k_tensor, ck, k, v_th, v_reset, alpha, kind, soft, detach,
                                            surrogate, need_gk)
    return (gx, gk.reshape(k_tensor.shape).to(k_tensor.dtype) if need_gk else None) + (None,) * 8


_lif_fwd_op.register_autograd(_lif_op_backward, setup_context=_lif_setup)


# -------------------------------------------------------------------------------------------- ternary
def ternary_forward(x: Tensor, amp: Tensor, decay: float, v_th: float, save: bool) -> Tuple[Tensor, Optional[Tensor]]:
    T, N, C, n_chunks, grid = _layout(x)
    xk = walkable(x)
    y = torch.empty_like(xk)
    ck = _checkpoints(x, (n_chunks - 1, N), save)
    if N:
        _launch(ternary_fwd_kernel, grid, (xk, y, _dummy(x) if ck is None else ck, amp, N, T, n_chunks,
                                           0 if ck is None else n_chunks - 1, float(decay), float(v_th)), C=C)
    return out_like(x, y), ck


def ternary_backward(gy: Tensor, x: Tensor, amp: Tensor, ck: Optional[Tensor], decay: float, v_th: float, detach: bool,
                     need_ga: bool) -> Tuple[Tensor, Optional[Tensor]]:
    T, N, C, n_chunks, grid = _layout(x, backward=True)
    xk = walkable(x)
    gy = _like(xk, gy)
    gx = torch.empty_like(xk)
    partial = _param_grad(x, grid[0], need_ga)
    if N:
        dummy = _dummy(x)
        _launch(ternary_bwd_kernel, grid, (xk, gy, gx, dummy if ck is None or not ck.numel() else ck, amp,
                                           dummy if partial is None else partial, N, T, n_chunks, float(decay), float(v_th)),
                backward=True, DETACH=detach, NEED_GA=need_ga, C=C)
    return out_like(x, gx), (None if partial is None else partial.sum())


class TernaryFunction(torch.autograd.Function):
    """Eager autograd wrapper: `apply(x, amplitude, (decay, v_th, detach))`."""

    @staticmethod
    def forward(ctx, x: Tensor, amp: Tensor, params: tuple) -> Tensor:
        decay, v_th, detach = params
        y, ck = ternary_forward(x, amp, decay, v_th, True)
        ctx.save_for_backward(x, amp, ck)
        ctx.params = params
        return y

    @staticmethod
    def backward(ctx, gy: Tensor):
        x, amp, ck = ctx.saved_tensors
        decay, v_th, detach = ctx.params
        need_ga = ctx.needs_input_grad[1]
        gx, ga = ternary_backward(gy, x, amp, ck, decay, v_th, detach, need_ga)
        return gx, (None if ga is None else ga.reshape(amp.shape).to(amp.dtype)), None


@torch.library.custom_op("spikeformers::ternary_fwd", mutates_args=())
def _ternary_fwd_op(x: Tensor, amp: Tensor, decay: float, v_th: float, detach: bool) -> Tuple[Tensor, Tensor]:
    y, ck = ternary_forward(x, amp, decay, v_th, True)
    return y, _no_checkpoints(x) if ck is None else ck


@_ternary_fwd_op.register_fake
def _(x, amp, decay, v_th, detach):
    T = x.shape[0]
    C = max(1, min(T, CONFIG["chunk"]))
    return torch.empty_like(x), x.new_empty(((T + C - 1) // C - 1, x.numel() // T), dtype=torch.float32)


@torch.library.custom_op("spikeformers::ternary_bwd", mutates_args=())
def _ternary_bwd_op(gy: Tensor, x: Tensor, amp: Tensor, ck: Tensor, decay: float, v_th: float, detach: bool,
                    need_ga: bool) -> Tuple[Tensor, Tensor]:
    gx, ga = ternary_backward(gy, x, amp, ck, decay, v_th, detach, need_ga)
    return gx, x.new_zeros((), dtype=torch.float32) if ga is None else ga


@_ternary_bwd_op.register_fake
def _(gy, x, amp, ck, decay, v_th, detach, need_ga):
    return torch.empty_like(x), x.new_empty((), dtype=torch.float32)


def _ternary_setup(ctx, inputs, output):
    x, amp, decay, v_th, detach = inputs
    ctx.save_for_backward(x, amp, output[1])
    ctx.params = (decay, v_th, detach)


def _ternary_op_backward(ctx, gy, _gck):
    x, amp, ck = ctx.saved_tensors
    decay, v_th, detach = ctx.params
    need_ga = ctx.needs_input_grad[1]
    gx, ga = torch.ops.spikeformers.ternary_bwd(gy, x, amp, ck, decay, v_th, detach, need_ga)
    return gx, (ga.reshape(amp.shape).to(amp.dtype) if need_ga else None), None, None, None


_ternary_fwd_op.register_autograd(_ternary_op_backward, setup_context=_ternary_setup)


# ---------------------------------------------------------------------------------------- entry points
def lif(x: Tensor, k_tensor: Optional[Tensor], params: tuple) -> Tensor:
    """IF/LIF/PLIF spikes of x [T, ...]. params = (k, v_th, v_reset, alpha, kind, soft, detach, surrogate id):
    k the decay 1/tau (0 with `k_tensor`, PLIF's decay as a tensor), kind 0 IF, 1 LIF with decay_input, 2 LIF
    without, soft for a soft reset, surrogate an index of `SURROGATES`."""
    if torch.compiler.is_compiling():
        return torch.ops.spikeformers.lif_fwd(x, k_tensor, *params)[0]
    if torch.is_grad_enabled() and (x.requires_grad or (k_tensor is not None and k_tensor.requires_grad)):
        return LIFFunction.apply(x, k_tensor, params)
    k, v_th, v_reset, alpha, kind, soft, detach, surrogate = params
    return lif_forward(x, k_tensor, k, v_th, v_reset, kind, soft, False)[0]


def ternary(x: Tensor, amp: Tensor, params: tuple) -> Tensor:
    """Ternary spikes {-amp, 0, amp} of x [T, ...]; params = (decay, v_th, detach)."""
    if torch.compiler.is_compiling():
        return torch.ops.spikeformers.ternary_fwd(x, amp, *params)[0]
    if torch.is_grad_enabled() and (x.requires_grad or amp.requires_grad):
        return TernaryFunction.apply(x, amp, params)
    return ternary_forward(x, amp, params[0], params[1], False)[0]
