"""Triton kernels for the ternary neuron (`TernaryNode`): one launch over all T steps.

Same layout and chunked recomputation as `triton_lif.py`. Forward, per column and step (the
reference's fp32 operations in its order, so outputs are bit-identical):
    u = decay u + x;  z = u / V_th;  s = sign(z) [|z| >= 0.5];  y = a s;  u = u (1 - |s|)
Backward (straight-through with the gradient of clamp(z, -1, 1); `m = |s|` carries sign(s)):
    gs = gY a + [not detach] gU' (-u) s;  gz = gs [|z| <= 1]
    gu = gz / V_th + gU' (1 - |s|);  gX = gu;  gU'(previous step) = gu decay
    d a = sum gY s   (per-program fp32 partial sums, added by the caller)
Saved for backward: x and the post-reset u at every chunk end but the last (fp32).
"""
from __future__ import annotations

import triton
import triton.language as tl

__all__ = ["ternary_fwd_kernel", "ternary_bwd_kernel"]


@triton.jit
def _fire(u, v_th):
    z = tl.div_rn(u, v_th)  # correctly rounded, like the reference's division
    s = tl.where(tl.abs(z) >= 0.5, tl.where(z > 0.0, 1.0, -1.0), 0.0)
    return z, s


@triton.jit
def ternary_fwd_kernel(x_ptr, y_ptr, ck_ptr, amp_ptr, N, T, n_chunks, n_saved, decay, v_th,
                       C: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    amp = tl.load(amp_ptr).to(tl.float32)
    u = tl.zeros([BLOCK], dtype=tl.float32)
    c = pid.to(tl.int64) * 0  # an int64 counter: t * N may pass 2**31
    while c < n_chunks:
        for j in tl.static_range(C):
            t = c * C + j
            m = mask & (t < T)
            p = t * N + offs
            x = tl.load(x_ptr + p, mask=m, other=0.0).to(tl.float32)
            u = decay * u + x
            z, s = _fire(u, v_th)
            tl.store(y_ptr + p, (s * amp).to(y_ptr.dtype.element_ty), mask=m)
            u = u * (1.0 - tl.abs(s))
        tl.store(ck_ptr + c * N + offs, u, mask=mask & (c < n_saved))  # checkpoints (none without grad)
        c += 1


@triton.jit
def ternary_bwd_kernel(x_ptr, gy_ptr, gx_ptr, ck_ptr, amp_ptr, ga_ptr, N, T, n_chunks, decay, v_th,
                       DETACH: tl.constexpr, NEED_GA: tl.constexpr, C: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    amp = tl.load(amp_ptr).to(tl.float32)
    gu_next = tl.zeros([BLOCK], dtype=tl.float32)  # dL/du (post-reset) at t, from the steps after t
    ga_acc = tl.zeros([BLOCK], dtype=tl.float32)
    cc = pid.to(tl.int64) * 0
    while cc < n_chunks:
        c = n_chunks - 1 - cc
        u = tl.load(ck_ptr + (c - 1) * N + offs, mask=mask & (c > 0), other=0.0).to(tl.float32)
        u = tl.where(c > 0, u, tl.zeros([BLOCK], dtype=tl.float32))
        us = ()
        for j in tl.static_range(C):  # recompute the chunk's pre-reset u
            t = c * C + j
            x = tl.load(x_ptr + t * N + offs, mask=mask & (t < T), other=0.0).to(tl.float32)
            u = decay * u + x
            z, s = _fire(u, v_th)
            us = us + (u,)
            u = u * (1.0 - tl.abs(s))
        for i in tl.static_range(C):
            t = c * C + (C - 1 - i)
            m = mask & (t < T)
            p = t * N + offs
            u = us[C - 1 - i]
            z, s = _fire(u, v_th)
            gy = tl.load(gy_ptr + p, mask=m, other=0.0).to(tl.float32)
            gs = gy * amp
            if not DETACH:
                gs = gs - gu_next * u * s
            gz = tl.where(tl.abs(z) <= 1.0, gs, 0.0)
            gu = gz / v_th + gu_next * (1.0 - tl.abs(s))
            tl.store(gx_ptr + p, gu.to(gx_ptr.dtype.element_ty), mask=m)
            if NEED_GA:
                ga_acc += gy * s
            gu_next = gu * decay
        cc += 1
    if NEED_GA:
        tl.store(ga_ptr + pid, tl.sum(ga_acc, axis=0))
