"""Triton kernels for the integrate-and-fire family (IF, LIF, PLIF): one launch over all T steps.

Layout: the input `[T, ...]` is read as `[T, N]` (N = elements per step, any dense layout whose time
stride is N); program `p` owns the columns `[p * BLOCK, (p + 1) * BLOCK)` and walks them through
time, so the membrane potential lives in registers from the first step to the last.

Forward (per column, per step; the same fp32 operations, in the same order, as the reference
`LIFNode.charge/fire/reset`, so spikes are bit-identical to the reference run in fp32):
    H = charge(V, X);  S = (H - V_th >= 0);  V = reset(H, S)
Saved for backward: the input X (input dtype) and, when T > C, the potential V at the end of every
C-step chunk but the last (fp32 "checkpoints", [ceil(T / C) - 1, N]). The backward recomputes one
chunk's H in registers from its checkpoint, then walks that chunk backwards:
    gS = gY + [not detach] gV dV/dS              dV/dS = V_reset - H (hard) or -V_th (soft)
    gH = gS * surrogate'(H - V_th) + gV dV/dH|S  dV/dH|S = 1 - S (hard) or 1 (soft)
    gX = gH * dH/dX;  gV(previous step) = gH * dH/dV
PLIF's decay k = sigmoid(w) gets dL/dk = sum over steps and columns of gH * dH/dk, summed per
program in fp32 and written to one slot per program (the caller adds the slots: deterministic).

KIND: 0 IF (H = V + X), 1 LIF with decay_input (H = V + (X - (V - rest)) k),
      2 LIF without (H = V - (V - rest) k + X); rest = V_reset (hard) or 0 (soft).
SURR: 0 sigmoid, 1 atan, 2 triangle, 3 rectangle, 4 straight-through (see neurons/surrogate.py).

Loops over chunks are `while` loops: Triton's interpreter (used by the CPU tests) cannot take
`range()` of a run-time scalar with NumPy >= 2.3.
"""
from __future__ import annotations

import triton
import triton.language as tl

__all__ = ["lif_fwd_kernel", "lif_bwd_kernel", "surrogate_grad", "grad_h", "bn_output", "forward_walk", "charge",
           "charge_derivatives", "rest_value", "reset"]


@triton.jit
def charge(v, x, k, rest, KIND: tl.constexpr):
    if KIND == 0:
        h = v + x
    elif KIND == 1:
        h = v + (x - (v - rest)) * k
    else:
        h = v - (v - rest) * k + x
    return h


@triton.jit
def charge_derivatives(k, KIND: tl.constexpr):
    """(dH/dV, dH/dX) of `charge`."""
    if KIND == 0:
        dh_dv = 1.0
        dh_dx = 1.0
    elif KIND == 1:
        dh_dv = 1.0 - k
        dh_dx = k
    else:
        dh_dv = 1.0 - k
        dh_dx = 1.0
    return dh_dv, dh_dx


@triton.jit
def rest_value(v_reset, SOFT: tl.constexpr):
    """The potential a neuron rests at (and decays toward): V_reset, or 0 with soft reset."""
    if SOFT:
        rest = 0.0
    else:
        rest = v_reset
    return rest


@triton.jit
def reset(h, s, v_th, v_reset, SOFT: tl.constexpr):
    if SOFT:
        v = h - s * v_th
    else:
        v = h * (1.0 - s) + v_reset * s
    return v


@triton.jit
def surrogate_grad(z, alpha, half_width, SURR: tl.constexpr):
    """The surrogate's derivative at z = H - V_th (fp32)."""
    if SURR == 0:
        sg = tl.sigmoid(alpha * z)
        d = alpha * sg * (1.0 - sg)
    elif SURR == 1:
        u = 1.5707963267948966 * alpha * z
        d = alpha * 0.5 / (1.0 + u * u)
    elif SURR == 2:
        d = alpha * tl.maximum(1.0 - alpha * tl.abs(z), 0.0)
    elif SURR == 3:
        d = tl.where(tl.abs(z) < half_width, alpha, 0.0)
    else:
        d = z * 0.0 + 1.0
    return d


@triton.jit
def grad_h(h, s, gy, gv, v_th, v_reset, alpha, half_width, SOFT: tl.constexpr, DETACH: tl.constexpr,
           SURR: tl.constexpr):
    """dL/dH at one step from dL/dS (gy) and dL/dV after the reset (gv); s = the step's spikes."""
    if SOFT:
        if DETACH:
            gs = gy
        else:
            gs = gy - gv * v_th
        gh = gs * surrogate_grad(h - v_th, alpha, half_width, SURR) + gv
    else:
        if DETACH:
            gs = gy
        else:
            gs = gy + gv * (v_reset - h)
        gh = gs * surrogate_grad(h - v_th, alpha, half_width, SURR) + gv * (1.0 - s)
    return gh


@triton.jit
def bn_output(x, scale, shift, x_ptr):
    """BatchNorm's output for x (fp32) rounded to x's stored dtype, as BN's `affine` kernel stores it, in fp32."""
    return tl.fma(x, scale, shift).to(x_ptr.dtype.element_ty).to(tl.float32)


@triton.jit
def forward_walk(x_ptr, y_ptr, ck_ptr, offs, mask, N, T, n_chunks, n_saved, k, v_th, v_reset, scale, shift,
                 KIND: tl.constexpr, SOFT: tl.constexpr, C: tl.constexpr, AFFINE: tl.constexpr):
    """One program's forward over all steps from rest: `offs`/`mask` its elements within a step (columns, or a
    2-D tile). Writes the spikes and, at each chunk's end, the checkpoints (none without grad). AFFINE: the input is BatchNorm's, fma(x, scale, shift) rounded to x's dtype as BN stores its output
    (triton_bn_fire.py)."""
    rest = rest_value(v_reset, SOFT)
    v = tl.zeros(offs.shape, dtype=tl.float32) + rest
    c = tl.program_id(0).to(tl.int64) * 0  # an int64 counter: t * N may pass 2**31
    while c < n_chunks:
        for j in tl.static_range(C):
            t = c * C + j
            m = mask & (t < T)
            p = t * N + offs
            x = tl.load(x_ptr + p, mask=m, other=0.0).to(tl.float32)
            if AFFINE:
                x = bn_output(x, scale, shift, x_ptr)
            h = charge(v, x, k, rest, KIND)
            s = ((h - v_th) >= 0.0).to(tl.float32)
            tl.store(y_ptr + p, s.to(y_ptr.dtype.element_ty), mask=m)
            v = reset(h, s, v_th, v_reset, SOFT)
        tl.store(ck_ptr + c * N + offs, v, mask=mask & (c < n_saved))
        c += 1


@triton.jit
def columns(N, k_ptr, k_val, K_PTR: tl.constexpr, BLOCK: tl.constexpr):
    """(program id, its columns, their mask, the decay k: PLIF's from its tensor, else the constant)."""
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    if K_PTR:
        k = tl.load(k_ptr).to(tl.float32)
    else:
        k = k_val
    return pid, offs, offs < N, k


@triton.jit
def lif_fwd_kernel(x_ptr, y_ptr, ck_ptr, k_ptr, N, T, n_chunks, n_saved, k_val, v_th, v_reset,
                   KIND: tl.constexpr, K_PTR: tl.constexpr, SOFT: tl.constexpr, C: tl.constexpr, BLOCK: tl.constexpr):
    pid, offs, mask, k = columns(N, k_ptr, k_val, K_PTR, BLOCK)
    forward_walk(x_ptr, y_ptr, ck_ptr, offs, mask, N, T, n_chunks, n_saved, k, v_th, v_reset, 1.0, 0.0, KIND, SOFT, C,
                 False)


@triton.jit
def lif_bwd_kernel(x_ptr, gy_ptr, gx_ptr, ck_ptr, k_ptr, gk_ptr, N, T, n_chunks, k_val, v_th, v_reset,
                   alpha, half_width,
                   KIND: tl.constexpr, K_PTR: tl.constexpr, SOFT: tl.constexpr, DETACH: tl.constexpr,
                   SURR: tl.constexpr, NEED_GK: tl.constexpr, C: tl.constexpr, BLOCK: tl.constexpr):
    pid, offs, mask, k = columns(N, k_ptr, k_val, K_PTR, BLOCK)
    rest = rest_value(v_reset, SOFT)
    dh_dv, dh_dx = charge_derivatives(k, KIND)
    gv = tl.zeros([BLOCK], dtype=tl.float32)  # dL/dV[t] from the steps after t
    gk_acc = tl.zeros([BLOCK], dtype=tl.float32)
    cc = pid.to(tl.int64) * 0  # an int64 counter: t * N may pass 2**31
    while cc < n_chunks:
        c = n_chunks - 1 - cc
        # the chunk's starting potential: a checkpoint, or the rest value for the first chunk
        v0 = tl.load(ck_ptr + (c - 1) * N + offs, mask=mask & (c > 0), other=0.0).to(tl.float32)
        v0 = tl.where(c > 0, v0, tl.zeros([BLOCK], dtype=tl.float32) + rest)
        v = v0
        hs = ()
        for j in tl.static_range(C):  # recompute H for the chunk, in registers
            t = c * C + j
            m = mask & (t < T)
            x = tl.load(x_ptr + t * N + offs, mask=m, other=0.0).to(tl.float32)
            h = charge(v, x, k, rest, KIND)
            s = ((h - v_th) >= 0.0).to(tl.float32)
            v = reset(h, s, v_th, v_reset, SOFT)
            hs = hs + (h,)
        for i in tl.static_range(C):  # walk the chunk backwards; steps past T have gY = gV = 0
            t = c * C + (C - 1 - i)
            m = mask & (t < T)
            p = t * N + offs
            h = hs[C - 1 - i]
            s = ((h - v_th) >= 0.0).to(tl.float32)
            gy = tl.load(gy_ptr + p, mask=m, other=0.0).to(tl.float32)
            gh = grad_h(h, s, gy, gv, v_th, v_reset, alpha, half_width, SOFT, DETACH, SURR)
            tl.store(gx_ptr + p, (gh * dh_dx).to(gx_ptr.dtype.element_ty), mask=m)
            if NEED_GK:
                if i == C - 1:
                    v_prev = v0
                else:
                    hp = hs[C - 2 - i]
                    v_prev = reset(hp, ((hp - v_th) >= 0.0).to(tl.float32), v_th, v_reset, SOFT)
                if KIND == 1:
                    x = tl.load(x_ptr + p, mask=m, other=0.0).to(tl.float32)
                    gk_acc += gh * (x - (v_prev - rest))
                else:
                    gk_acc -= gh * (v_prev - rest)
            gv = gh * dh_dv
        cc += 1
    if NEED_GK:
        tl.store(gk_ptr + pid, tl.sum(gk_acc, axis=0))
