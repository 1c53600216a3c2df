"""Triton kernels for RWKV-4's WKV recurrence (SpikeGPT's token mixing), one program per (sample, block of
channels), walking the tokens in order (forward) and in reverse (backward) with the state in registers,
UNROLL tokens per loop iteration (their loads do not depend on the recurrence, so they need not wait for it;
the tokens past either end are masked and add nothing that is read).

Per channel, with w < 0 and the token's bonus u:

    y_t = (A_t + e^{u + k_t} v_t) / D_t,   D_t = S_t + e^{u + k_t}
    A_t = sum_{i<t} e^{(t-1-i) w + k_i} v_i,   S_t = sum_{i<t} e^{(t-1-i) w + k_i}

Forward: the state (a, s) is A and S scaled by e^{-p}, p a running bound on their exponents (no overflow
for any k): per token, q = max(p, u + k_t), y_t = (e^{p-q} a + e^{u+k_t-q} v_t) / (e^{p-q} s + e^{u+k_t-q});
then the past takes the token in: q = max(p + w, k_t), a = e^{p+w-q} a + e^{k_t-q} v_t, s likewise, p = q.
For backward it saves y_t in fp32 and L_t = log D_t.

Backward (g_t = dL/dy_t), from dy_t/dv_i = e^{(t-1-i) w + k_i} / D_t and dy_t/dk_i = that times (v_i - y_t)
for i < t, and the token's own e^{u + k_t} / D_t and e^{u + k_t} (v_t - y_t) / D_t; reverse sums over the
later tokens t > i:

    P_i = sum_t g_t e^{(t-1-i) w} / D_t,        Q_i = sum_t g_t y_t e^{(t-1-i) w} / D_t
    R_i = sum_t (t-1-i) g_t e^{(t-1-i) w} / D_t, RQ_i = the same with y_t
    gv_i = g_i e^{u+k_i-L_i} + e^{k_i} P_i,      gk_i = g_i e^{u+k_i-L_i} (v_i - y_i) + e^{k_i} (v_i P_i - Q_i)
    gu  += g_i e^{u+k_i-L_i} (v_i - y_i),        gw  += e^{k_i} (v_i R_i - RQ_i)
    P_{i-1} = g_i e^{-L_i} + e^w P_i,  R_{i-1} = e^w (R_i + P_i)   (Q, RQ alike with g_i y_i)

all four kept scaled by e^{-o}, o_{i-1} = max(w + o_i, -L_i): every exponent taken is <= 0 (L_t >=
(t-1-i) w + k_i because D_t contains that term). gw and gu are per-program fp32 partial sums [B, C] that
torch adds (deterministic, no atomics).
"""
from __future__ import annotations

import triton
import triton.language as tl

__all__ = ["wkv_fwd_kernel", "wkv_bwd_kernel"]

_EMPTY = tl.constexpr(-1e38)  # exponent of an empty sum: exp() of it (plus any w or k) is 0 in fp32


@triton.jit
def _program(w_ptr, u_ptr, C, BLOCK_C: tl.constexpr):
    """This program's sample b, its channels (and their mask) and their w and u in fp32."""
    b = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    cm = cols < C
    w = tl.load(w_ptr + cols, mask=cm, other=0.0).to(tl.float32)
    u = tl.load(u_ptr + cols, mask=cm, other=0.0).to(tl.float32)
    return b, cols, cm, w, u


@triton.jit
def wkv_fwd_kernel(w_ptr, u_ptr, k_ptr, v_ptr, y_ptr, ys_ptr, lse_ptr, N, C,
                   SAVE: tl.constexpr, BLOCK_C: tl.constexpr, UNROLL: tl.constexpr):
    b, cols, cm, w, u = _program(w_ptr, u_ptr, C, BLOCK_C)
    a = tl.zeros([BLOCK_C], dtype=tl.float32)
    s = tl.zeros([BLOCK_C], dtype=tl.float32)
    p = tl.full([BLOCK_C], _EMPTY, dtype=tl.float32)
    t0 = b * 0
    while t0 < N:
        for j in tl.static_range(UNROLL):  # unrolled: the loads of all UNROLL tokens issue before the recurrence
            m = cm & (t0 + j < N)  # past the last token the state may change: nothing reads it
            off = (b * N + t0 + j) * C + cols
            kt = tl.load(k_ptr + off, mask=m, other=0.0).to(tl.float32)
            vt = tl.load(v_ptr + off, mask=m, other=0.0).to(tl.float32)
            now = u + kt
            q = tl.maximum(p, now)
            e1 = tl.exp(p - q)
            e2 = tl.exp(now - q)
            den = e1 * s + e2
            y = (e1 * a + e2 * vt) / den
            tl.store(y_ptr + off, y.to(y_ptr.dtype.element_ty), mask=m)
            if SAVE:
                tl.store(ys_ptr + off, y, mask=m)
                tl.store(lse_ptr + off, q + tl.log(den), mask=m)
            past = p + w
            q = tl.maximum(past, kt)
            e1 = tl.exp(past - q)
            e2 = tl.exp(kt - q)
            a = e1 * a + e2 * vt
            s = e1 * s + e2
            p = q
        t0 += UNROLL


@triton.jit
def wkv_bwd_kernel(w_ptr, u_ptr, k_ptr, v_ptr, g_ptr, ys_ptr, lse_ptr, gk_ptr, gv_ptr, gw_ptr, gu_ptr, N, C,
                   BLOCK_C: tl.constexpr, UNROLL: tl.constexpr):
    b, cols, cm, w, u = _program(w_ptr, u_ptr, C, BLOCK_C)
    P = tl.zeros([BLOCK_C], dtype=tl.float32)
    Q = tl.zeros([BLOCK_C], dtype=tl.float32)
    R = tl.zeros([BLOCK_C], dtype=tl.float32)
    RQ = tl.zeros([BLOCK_C], dtype=tl.float32)
    o = tl.full([BLOCK_C], _EMPTY, dtype=tl.float32)
    gw = tl.zeros([BLOCK_C], dtype=tl.float32)
    gu = tl.zeros([BLOCK_C], dtype=tl.float32)
    t0 = b * 0 + N - 1
    while t0 >= 0:
        for j in tl.static_range(UNROLL):  # tokens t0, t0 - 1, ...: before the first token nothing is added
            valid = t0 - j >= 0
            m = cm & valid
            off = (b * N + t0 - j) * C + cols
            kt = tl.load(k_ptr + off, mask=m, other=0.0).to(tl.float32)
            vt = tl.load(v_ptr + off, mask=m, other=0.0).to(tl.float32)
            gt = tl.load(g_ptr + off, mask=m, other=0.0).to(tl.float32)
            yt = tl.load(ys_ptr + off, mask=m, other=0.0)
            lt = tl.load(lse_ptr + off, mask=m, other=0.0)
            own = tl.where(m, gt * tl.exp(u + kt - lt), 0.0)  # g_t e^{u + k_t} / D_t; masked: 0 * e^u is NaN
            ek = tl.exp(kt + o)  # e^{k_t} times the scale of P, Q, R, RQ
            tl.store(gv_ptr + off, (own + ek * P).to(gv_ptr.dtype.element_ty), mask=m)
            tl.store(gk_ptr + off, (own * (vt - yt) + ek * (vt * P - Q)).to(gk_ptr.dtype.element_ty), mask=m)
            gu += own * (vt - yt)
            gw += tl.where(valid, ek * (vt * R - RQ), 0.0)
            o_new = tl.maximum(w + o, -lt)
            keep = tl.exp(w + o - o_new)
            add = gt * tl.exp(-lt - o_new)
            R = keep * (R + P)
            RQ = keep * (RQ + Q)
            P = keep * P + add
            Q = keep * Q + add * yt
            o = o_new
        t0 -= UNROLL
    tl.store(gw_ptr + b * C + cols, gw, mask=cm)
    tl.store(gu_ptr + b * C + cols, gu, mask=cm)
