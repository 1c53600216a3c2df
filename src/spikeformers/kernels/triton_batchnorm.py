"""Triton kernels for training-mode BatchNorm on a channel-fastest `[M, C]` view (2-D input, or 4-D
channels_last: M = N*H*W), used by `layers/batchnorm.py`.

Why: PyTorch's channels_last BatchNorm statistics and backward sums are a large share of a spiking
transformer's training step (every Linear and conv is followed by BN); the measured costs are in
benchmarks/NOTES.md.

Forward: `partial_sums` (each program sums a slab of rows, per channel, in fp32: no atomics, so the
result does not depend on scheduling), `finalize_forward` (statistics, running-stat update, the
per-channel scale and shift), `affine` (y = x * scale + shift). Variance by the shifted-data method:
sums of (x - K) and (x - K)^2 with K = the first row, so E[x^2] - E[x]^2 does not cancel when the mean is
large against the spread. Backward: `partial_sums` of dy and dy * (x - mean), `finalize_backward`
(dgamma, dbeta and three per-channel coefficients), `affine` with two inputs:
    dx = dy * a + x * b + c   (a = gamma / sigma, b = -gamma / sigma^3 * sum(dy (x - mean)) / M,
                               c = -a * sum(dy) / M - b * mean)
"""
from __future__ import annotations

import triton
import triton.language as tl

__all__ = ["partial_sums", "finalize_forward", "finalize_backward", "affine"]


@triton.jit
def partial_sums(a_ptr, b_ptr, ref_ptr, out_ptr, M, C, rows_per_prog,
                 PRODUCT: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr):
    """Per program (rows slab p, channel block): out[0, p, c] = sum(u), out[1, p, c] = sum(u * v) over its
    rows, with u = a - ref, v = u (forward: a = x, ref = x's first row) or u = a, v = b - ref (backward:
    a = dy, b = x, ref = mean) when PRODUCT."""
    pid_m = tl.program_id(0)
    pid_c = tl.program_id(1)
    cols = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = cols < C
    if PRODUCT:
        ref = tl.load(ref_ptr + cols, mask=cmask, other=0.0).to(tl.float32)
    else:
        ref = tl.load(a_ptr + cols, mask=cmask, other=0.0).to(tl.float32)  # the shift K: the first row
    s1 = tl.zeros([BLOCK_M, BLOCK_C], dtype=tl.float32)
    s2 = tl.zeros([BLOCK_M, BLOCK_C], dtype=tl.float32)
    start = pid_m.to(tl.int64) * rows_per_prog
    end = tl.minimum(start + rows_per_prog, M)
    r = start
    while r < end:
        rows = r + tl.arange(0, BLOCK_M)
        mask = (rows < end)[:, None] & cmask[None, :]
        offs = rows[:, None] * C + cols[None, :]
        a = tl.load(a_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        if PRODUCT:
            v = tl.load(b_ptr + offs, mask=mask, other=0.0).to(tl.float32) - ref[None, :]
            u = a
        else:
            u = a - ref[None, :]
            v = u
        u = tl.where(mask, u, 0.0)
        s1 += u
        s2 += u * tl.where(mask, v, 0.0)
        r += BLOCK_M
    P = tl.num_programs(0)
    tl.store(out_ptr + pid_m * C + cols, tl.sum(s1, axis=0), mask=cmask)
    tl.store(out_ptr + (P + pid_m) * C + cols, tl.sum(s2, axis=0), mask=cmask)


@triton.jit
def _column_totals(part_ptr, P, C, cols, cmask, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """The two [P, C] partial-sum planes summed over P, BLOCK_P rows at a time, in a fixed order
    (deterministic); a row-at-a-time loop made these kernels latency-bound (measured)."""
    acc1 = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    acc2 = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    p = 0
    while p < P:
        rows = p + tl.arange(0, BLOCK_P)
        mask = (rows < P)[:, None] & cmask[None, :]
        offs = rows[:, None] * C + cols[None, :]
        acc1 += tl.load(part_ptr + offs, mask=mask, other=0.0)
        acc2 += tl.load(part_ptr + P * C + offs, mask=mask, other=0.0)
        p += BLOCK_P
    return tl.sum(acc1, axis=0), tl.sum(acc2, axis=0)


@triton.jit
def finalize_forward(part_ptr, x_ptr, w_ptr, b_ptr, rm_ptr, rv_ptr, mean_ptr, invstd_ptr, scale_ptr, shift_ptr, pre_ptr,
                     P, M, C, momentum, eps, UPDATE: tl.constexpr, PRE: tl.constexpr, BLOCK_P: tl.constexpr,
                     BLOCK_C: tl.constexpr):
    """PRE: x is the input less a per-channel bias `pre` (a folded Linear/conv bias): the normalised
    output is the same, only the running mean sees the bias."""
    pid = tl.program_id(0)
    cols = pid * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = cols < C
    s1, s2 = _column_totals(part_ptr, P, C, cols, cmask, BLOCK_P, BLOCK_C)
    k = tl.load(x_ptr + cols, mask=cmask, other=0.0).to(tl.float32)
    d = s1 / M
    mean = k + d
    var = tl.maximum(s2 / M - d * d, 0.0)  # biased: what the batch is normalised with
    invstd = 1.0 / tl.sqrt(var + eps)
    w = tl.load(w_ptr + cols, mask=cmask, other=1.0).to(tl.float32)
    b = tl.load(b_ptr + cols, mask=cmask, other=0.0).to(tl.float32)
    scale = w * invstd
    tl.store(mean_ptr + cols, mean, mask=cmask)
    tl.store(invstd_ptr + cols, invstd, mask=cmask)
    tl.store(scale_ptr + cols, scale, mask=cmask)
    tl.store(shift_ptr + cols, b - mean * scale, mask=cmask)
    if UPDATE:  # running statistics, as torch: unbiased variance
        rm = tl.load(rm_ptr + cols, mask=cmask, other=0.0)
        rv = tl.load(rv_ptr + cols, mask=cmask, other=0.0)
        if PRE:
            mean += tl.load(pre_ptr + cols, mask=cmask, other=0.0).to(tl.float32)
        tl.store(rm_ptr + cols, (rm + momentum * (mean - rm.to(tl.float32))).to(rm_ptr.dtype.element_ty), mask=cmask)
        unbiased = var * M / tl.maximum(M - 1, 1)
        tl.store(rv_ptr + cols, (rv + momentum * (unbiased - rv.to(tl.float32))).to(rv_ptr.dtype.element_ty), mask=cmask)


@triton.jit
def finalize_backward(part_ptr, w_ptr, mean_ptr, invstd_ptr, dw_ptr, db_ptr, a_ptr, b_ptr, c_ptr, P, M, C,
                      BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    pid = tl.program_id(0)
    cols = pid * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = cols < C
    sdy, sdyx = _column_totals(part_ptr, P, C, cols, cmask, BLOCK_P, BLOCK_C)
    w = tl.load(w_ptr + cols, mask=cmask, other=1.0).to(tl.float32)
    mean = tl.load(mean_ptr + cols, mask=cmask, other=0.0)
    invstd = tl.load(invstd_ptr + cols, mask=cmask, other=0.0)
    tl.store(dw_ptr + cols, sdyx * invstd, mask=cmask)
    tl.store(db_ptr + cols, sdy, mask=cmask)
    a = w * invstd
    b = -a * invstd * invstd * sdyx / M
    tl.store(a_ptr + cols, a, mask=cmask)
    tl.store(b_ptr + cols, b, mask=cmask)
    tl.store(c_ptr + cols, -a * sdy / M - b * mean, mask=cmask)


@triton.jit
def affine(u_ptr, v_ptr, out_ptr, a_ptr, b_ptr, c_ptr, M, C, TWO: tl.constexpr, BLOCK_M: tl.constexpr,
           BLOCK_C: tl.constexpr):
    """out = u * a[c] + c[c] (TWO: + v * b[c]), in out's dtype, fp32 arithmetic."""
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = cols < C
    mask = (rows < M)[:, None] & cmask[None, :]
    offs = rows[:, None] * C + cols[None, :]
    a = tl.load(a_ptr + cols, mask=cmask, other=0.0)
    c = tl.load(c_ptr + cols, mask=cmask, other=0.0)
    out = tl.load(u_ptr + offs, mask=mask, other=0.0).to(tl.float32) * a[None, :] + c[None, :]
    if TWO:
        b = tl.load(b_ptr + cols, mask=cmask, other=0.0)
        out += tl.load(v_ptr + offs, mask=mask, other=0.0).to(tl.float32) * b[None, :]
    tl.store(out_ptr + offs, out.to(out_ptr.dtype.element_ty), mask=mask)
