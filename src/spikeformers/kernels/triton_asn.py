"""Triton kernels for the adaptive spiking neuron (`ASNNode`, spike mode): one launch over all T steps.

Same layout and chunked recomputation as `triton_lif.py`, with two state planes (V, theta). Forward,
per column and step, the reference's fp32 operations in its order (k_m, k_a = sigmoid of the learned
logits, one scalar or one per channel of the last axis):
    H = V + k_m (X - V);  S = (H - theta >= 0)
    V = H - S theta (soft) | H (1 - S) + V_reset S (hard)
    theta = V_th + (1 - k_a)(theta - V_th) + delta S
Backward, walking a chunk backwards with gV, gT = dL/dV, dL/dtheta after the step (s_r = S, whose
gradient `detach_reset` cuts from the reset and the threshold jump):
    gS = gY + [not detach] (gV dV/dS + gT delta);  gZ = gS surrogate'(H - theta)
    gH = gZ + gV dV/dH|S;  gtheta = -gZ + gV dV/dtheta|S + gT (1 - k_a)
    gX = gH k_m;  gV(previous) = gH (1 - k_m);  dk_m += gH (X - V);  dk_a -= gT (theta - V_th)
The k gradients are summed over time per column and written to [N] buffers; the caller reduces them
(over all columns, or per channel). Saved: x and (V, theta) at chunk ends ([n_chunks - 1, 2, N] fp32).
"""
from __future__ import annotations

import triton
import triton.language as tl

from .triton_lif import surrogate_grad

__all__ = ["asn_fwd_kernel", "asn_bwd_kernel"]


@triton.jit
def _k(ptr, offs, mask, C_K, PER_CHANNEL: tl.constexpr):
    if PER_CHANNEL:
        k = tl.load(ptr + offs % C_K, mask=mask, other=0.5).to(tl.float32)
    else:
        k = tl.load(ptr).to(tl.float32)
    return k


@triton.jit
def _step(v, theta, x, k_m, one_minus_ka, v_th, v_reset, delta, SOFT: tl.constexpr):
    h = v + k_m * (x - v)
    s = ((h - theta) >= 0.0).to(tl.float32)
    if SOFT:
        v_new = h - s * theta
    else:
        v_new = h * (1.0 - s) + v_reset * s
    theta_new = v_th + one_minus_ka * (theta - v_th) + delta * s
    return h, s, v_new, theta_new


@triton.jit
def asn_fwd_kernel(x_ptr, y_ptr, ck_ptr, km_ptr, ka_ptr, N, T, n_chunks, n_saved, C_K, v_th, v_reset, delta,
                   SOFT: tl.constexpr, PER_CHANNEL: tl.constexpr, C: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    k_m = _k(km_ptr, offs, mask, C_K, PER_CHANNEL)
    one_minus_ka = 1.0 - _k(ka_ptr, offs, mask, C_K, PER_CHANNEL)
    if SOFT:
        v = tl.zeros([BLOCK], dtype=tl.float32)
    else:
        v = tl.zeros([BLOCK], dtype=tl.float32) + v_reset
    theta = tl.zeros([BLOCK], dtype=tl.float32) + v_th
    c = pid.to(tl.int64) * 0  # an int64 counter: t * N may pass 2**31
    while c < n_chunks:
        for j in tl.static_range(C):
            t = c * C + j
            m = mask & (t < T)
            p = t * N + offs
            x = tl.load(x_ptr + p, mask=m, other=0.0).to(tl.float32)
            h, s, v, theta = _step(v, theta, x, k_m, one_minus_ka, v_th, v_reset, delta, SOFT)
            tl.store(y_ptr + p, s.to(y_ptr.dtype.element_ty), mask=m)
        keep = mask & (c < n_saved)  # checkpoints (none without grad)
        tl.store(ck_ptr + 2 * c * N + offs, v, mask=keep)
        tl.store(ck_ptr + (2 * c + 1) * N + offs, theta, mask=keep)
        c += 1


@triton.jit
def asn_bwd_kernel(x_ptr, gy_ptr, gx_ptr, ck_ptr, km_ptr, ka_ptr, gkm_ptr, gka_ptr, N, T, n_chunks, C_K,
                   v_th, v_reset, delta, alpha, half_width,
                   SOFT: tl.constexpr, DETACH: tl.constexpr, SURR: tl.constexpr, PER_CHANNEL: tl.constexpr,
                   NEED_GK: tl.constexpr, C: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    k_m = _k(km_ptr, offs, mask, C_K, PER_CHANNEL)
    one_minus_ka = 1.0 - _k(ka_ptr, offs, mask, C_K, PER_CHANNEL)
    if SOFT:
        rest = 0.0
    else:
        rest = v_reset
    gv = tl.zeros([BLOCK], dtype=tl.float32)  # dL/dV and dL/dtheta after step t, from the steps after t
    gt = tl.zeros([BLOCK], dtype=tl.float32)
    gkm_acc = tl.zeros([BLOCK], dtype=tl.float32)
    gka_acc = tl.zeros([BLOCK], dtype=tl.float32)
    cc = pid.to(tl.int64) * 0
    while cc < n_chunks:
        c = n_chunks - 1 - cc
        load = mask & (c > 0)
        v = tl.load(ck_ptr + 2 * (c - 1) * N + offs, mask=load, other=0.0).to(tl.float32)
        theta = tl.load(ck_ptr + (2 * c - 1) * N + offs, mask=load, other=0.0).to(tl.float32)
        v = tl.where(c > 0, v, tl.zeros([BLOCK], dtype=tl.float32) + rest)
        theta = tl.where(c > 0, theta, tl.zeros([BLOCK], dtype=tl.float32) + v_th)
        hs = ()
        vs = ()
        ths = ()
        for j in tl.static_range(C):  # recompute the chunk: H and the state before each step
            t = c * C + j
            x = tl.load(x_ptr + t * N + offs, mask=mask & (t < T), other=0.0).to(tl.float32)
            vs = vs + (v,)
            ths = ths + (theta,)
            h, s, v, theta = _step(v, theta, x, k_m, one_minus_ka, v_th, v_reset, delta, SOFT)
            hs = hs + (h,)
        for i in tl.static_range(C):
            t = c * C + (C - 1 - i)
            m = mask & (t < T)
            p = t * N + offs
            h = hs[C - 1 - i]
            theta = ths[C - 1 - i]
            z = h - theta
            s = (z >= 0.0).to(tl.float32)
            gy = tl.load(gy_ptr + p, mask=m, other=0.0).to(tl.float32)
            if SOFT:
                dv_ds = -theta
                dv_dh = 1.0
                dv_dth = -s
            else:
                dv_ds = v_reset - h
                dv_dh = 1.0 - s
                dv_dth = 0.0
            if DETACH:
                gs = gy
            else:
                gs = gy + gv * dv_ds + gt * delta
            gz = gs * surrogate_grad(z, alpha, half_width, SURR)
            gh = gz + gv * dv_dh
            g_theta = gv * dv_dth - gz + gt * one_minus_ka
            tl.store(gx_ptr + p, (gh * k_m).to(gx_ptr.dtype.element_ty), mask=m)
            if NEED_GK:
                x = tl.load(x_ptr + p, mask=m, other=0.0).to(tl.float32)
                gkm_acc += gh * (x - vs[C - 1 - i])
                gka_acc -= gt * (theta - v_th)
            gv = gh * (1.0 - k_m)
            gt = g_theta
        cc += 1
    if NEED_GK:
        tl.store(gkm_ptr + offs, gkm_acc, mask=mask)
        tl.store(gka_ptr + offs, gka_acc, mask=mask)
