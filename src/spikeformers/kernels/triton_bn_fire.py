"""Triton kernels for a training-mode BatchNorm followed by an IF/LIF neuron, fused (`bn_fire.py`).

Why: BatchNorm and the neuron after it moved 26 bytes per bf16 element in a training step (BN: statistics,
y = x * scale + shift; the neuron: read y, write spikes; backward: the neuron's dL/dy, BN's sums over dL/dy
and its dL/dx); fused they move 18 (benchmarks/NOTES.md).

Layout: BN's channel-fastest rows `[M, CH]` with time outermost (M = T * R): step t is rows
[t * R, (t + 1) * R), N = R * CH elements apart. A program owns a tile of BLOCK_R rows x BLOCK_C channels
of one step and walks it through time, as `triton_lif.py` walks its columns.

Forward (`bn_lif_fwd_kernel`): the neuron's input is BN's output, y = fma(x, scale, shift) rounded to x's
dtype, exactly what BN's `affine` kernel stores; the rest is the LIF forward (same checkpoints).
Backward (`bn_lif_bwd_kernel`): recomputes y and H per chunk, walks the chunk backwards as the LIF backward
does, stores g = dL/dy (x's dtype) and sums, per channel, the rounded g and g * (x - mean) over its rows and
steps: BN's backward partial sums, [2, P, CH] (P = row programs), without reading g and x again.
"""
from __future__ import annotations

import triton
import triton.language as tl

from .triton_lif import bn_output, charge, charge_derivatives, forward_walk, grad_h, reset, rest_value

__all__ = ["bn_lif_fwd_kernel", "bn_lif_bwd_kernel"]


@triton.jit
def _load(x_ptr, p, m):
    return tl.load(x_ptr + p, mask=m, other=0.0).to(tl.float32)


@triton.jit
def _tile(rows, cols, R, CH):
    """Offsets within a step and the mask of a [rows x cols] tile."""
    mask = (rows < R)[:, None] & (cols < CH)[None, :]
    return rows[:, None] * CH + cols[None, :], mask


@triton.jit
def bn_lif_fwd_kernel(x_ptr, y_ptr, ck_ptr, scale_ptr, shift_ptr, R, CH, N, T, n_chunks, n_saved, k, v_th, v_reset,
                      KIND: tl.constexpr, SOFT: tl.constexpr, C: tl.constexpr, BLOCK_R: tl.constexpr,
                      BLOCK_C: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    offs, mask = _tile(rows, cols, R, CH)
    scale = tl.load(scale_ptr + cols, mask=cols < CH, other=0.0)[None, :]
    shift = tl.load(shift_ptr + cols, mask=cols < CH, other=0.0)[None, :]
    forward_walk(x_ptr, y_ptr, ck_ptr, offs, mask, N, T, n_chunks, n_saved, k, v_th, v_reset, scale, shift, KIND, SOFT,
                 C, True)


@triton.jit
def bn_lif_bwd_kernel(x_ptr, gy_ptr, g_ptr, ck_ptr, scale_ptr, shift_ptr, mean_ptr, part_ptr, R, CH, N, T, n_chunks,
                      rows_per_prog, k, v_th, v_reset, alpha, half_width,
                      KIND: tl.constexpr, SOFT: tl.constexpr, DETACH: tl.constexpr, SURR: tl.constexpr,
                      C: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """gy: dL/d(spikes); g: out, dL/d(BN output); part: out, the [2, P, CH] partial sums of g and g * (x - mean)."""
    pid_r = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = cols < CH
    scale = tl.load(scale_ptr + cols, mask=cmask, other=0.0)[None, :]
    shift = tl.load(shift_ptr + cols, mask=cmask, other=0.0)[None, :]
    mean = tl.load(mean_ptr + cols, mask=cmask, other=0.0)[None, :]
    rest = rest_value(v_reset, SOFT)
    dh_dv, dh_dx = charge_derivatives(k, KIND)
    s1 = tl.zeros([BLOCK_R, BLOCK_C], dtype=tl.float32)
    s2 = tl.zeros([BLOCK_R, BLOCK_C], dtype=tl.float32)
    start = pid_r.to(tl.int64) * rows_per_prog
    end = tl.minimum(start + rows_per_prog, R)
    r = start
    while r < end:  # the program's row tiles, each through all steps
        offs, mask = _tile(r + tl.arange(0, BLOCK_R), cols, end, CH)
        gv = tl.zeros([BLOCK_R, BLOCK_C], dtype=tl.float32)  # dL/dV[t] from the steps after t
        cc = r * 0
        while cc < n_chunks:
            c = n_chunks - 1 - cc
            v = tl.load(ck_ptr + (c - 1) * N + offs, mask=mask & (c > 0), other=0.0)
            v = tl.where(c > 0, v, tl.zeros([BLOCK_R, BLOCK_C], dtype=tl.float32) + rest)
            xs = ()
            gys = ()
            for j in tl.static_range(C):  # every load of the chunk first: more bytes in flight per program
                t = c * C + j
                xs = xs + (_load(x_ptr, t * N + offs, mask & (t < T)),)
                gys = gys + (_load(gy_ptr, t * N + offs, mask & (t < T)),)
            hs = ()
            for j in tl.static_range(C):  # recompute H for the chunk, in registers
                h = charge(v, bn_output(xs[j], scale, shift, x_ptr), k, rest, KIND)
                v = reset(h, ((h - v_th) >= 0.0).to(tl.float32), v_th, v_reset, SOFT)
                hs = hs + (h,)
            for i in tl.static_range(C):  # walk the chunk backwards; steps past T have gY = gV = 0
                t = c * C + (C - 1 - i)
                m = mask & (t < T)
                p = t * N + offs
                h = hs[C - 1 - i]
                gh = grad_h(h, ((h - v_th) >= 0.0).to(tl.float32), gys[C - 1 - i], gv, v_th, v_reset, alpha, half_width,
                            SOFT, DETACH, SURR)
                g = (gh * dh_dx).to(g_ptr.dtype.element_ty)
                tl.store(g_ptr + p, g, mask=m)
                g = tl.where(m, g.to(tl.float32), 0.0)  # the sums see the stored (rounded) gradient
                s1 += g
                s2 += g * (xs[C - 1 - i] - mean)
                gv = gh * dh_dv
            cc += 1
        r += BLOCK_R
    P = tl.num_programs(0)
    tl.store(part_ptr + pid_r * CH + cols, tl.sum(s1, axis=0), mask=cmask)
    tl.store(part_ptr + (P + pid_r) * CH + cols, tl.sum(s2, axis=0), mask=cmask)
