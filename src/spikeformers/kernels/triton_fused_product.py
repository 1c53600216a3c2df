"""Triton kernels for the softmax-free attention product in the Q (K^T V) order, per (batch, head):

    kv = K^T V  [d, d]            y = scale * Q kv  [N, d]

read straight from the head-split views of the [.., N, H*d] projections (any strides with a unit last
one), written in the same layout, so neither the split nor the merge of heads copies anything. Used by
`attention/fused_product.py` (the autograd function); `AttentionProduct` dispatches to it.

Why: the three batched matmuls of this product at small head sizes (d = 32 in Spikformer-4-384) and the
copies that make their operands contiguous (and the gradients' transposes back) cost more than the
arithmetic; one kernel each way reads the operands in place (benchmarks/NOTES.md).

Rounding follows the torch product: kv is summed in fp32, then rounded to the operands' dtype before
the second product (as the bf16 output of the first matmul is); every product accumulates in fp32; fp32
operands use IEEE fp32 products unless torch's fp32 matmul precision allows TF32 (then TF32, as torch's
matmuls would: IEEE fp32 products on CUDA cores made the fp32 Spikformer-8-512 step at 224 x 224 spend
74 of its 143 ms in this backward on an H100). Backward (g = dL/dy):

    gkv = scale * Q^T g (rounded like kv),   dQ = scale * g kv^T,   dK = V gkv^T,   dV = K gkv
"""
from __future__ import annotations

import triton
import triton.language as tl

__all__ = ["q_kv_forward", "q_kv_backward"]


@triton.jit
def _tile(ptr, base, stride_n, rows, cols, N, D):
    """The [BLOCK_N, BLOCK_D] tile of rows `rows`, columns `cols` of one head's [N, D] matrix (zeros
    outside it)."""
    mask = (rows < N)[:, None] & (cols < D)[None, :]
    return tl.load(ptr + base + rows[:, None].to(tl.int64) * stride_n + cols[None, :], mask=mask, other=0.0)


@triton.jit
def _store(ptr, base, stride_n, rows, cols, N, D, val):
    mask = (rows < N)[:, None] & (cols < D)[None, :]
    tl.store(ptr + base + rows[:, None].to(tl.int64) * stride_n + cols[None, :], val.to(ptr.dtype.element_ty), mask=mask)


@triton.jit
def q_kv_forward(q_ptr, k_ptr, v_ptr, y_ptr, N, D, scale,
                 sq_z, sq_h, sq_n, sk_z, sk_h, sk_n, sv_z, sv_h, sv_n, sy_z, sy_h, sy_n,
                 PRECISION: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    z = tl.program_id(0).to(tl.int64)
    h = tl.program_id(1).to(tl.int64)
    cols = tl.arange(0, BLOCK_D)
    kv = tl.zeros([BLOCK_D, BLOCK_D], dtype=tl.float32)
    n0 = 0
    while n0 < N:  # not range(): the interpreter cannot index with a runtime N
        rows = n0 + tl.arange(0, BLOCK_N)
        kt = _tile(k_ptr, z * sk_z + h * sk_h, sk_n, rows, cols, N, D)
        vt = _tile(v_ptr, z * sv_z + h * sv_h, sv_n, rows, cols, N, D)
        kv += tl.dot(tl.trans(kt), vt, input_precision=PRECISION)
        n0 += BLOCK_N
    kv_r = kv.to(q_ptr.dtype.element_ty)
    n0 = 0
    while n0 < N:
        rows = n0 + tl.arange(0, BLOCK_N)
        qt = _tile(q_ptr, z * sq_z + h * sq_h, sq_n, rows, cols, N, D)
        y = tl.dot(qt, kv_r, input_precision=PRECISION) * scale
        _store(y_ptr, z * sy_z + h * sy_h, sy_n, rows, cols, N, D, y)
        n0 += BLOCK_N


@triton.jit
def q_kv_backward(q_ptr, k_ptr, v_ptr, g_ptr, gq_ptr, gk_ptr, gv_ptr, N, D, scale,
                  sq_z, sq_h, sq_n, sk_z, sk_h, sk_n, sv_z, sv_h, sv_n, sg_z, sg_h, sg_n,
                  PRECISION: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """dQ, dK, dV are written with the strides of Q, K, V."""
    z = tl.program_id(0).to(tl.int64)
    h = tl.program_id(1).to(tl.int64)
    cols = tl.arange(0, BLOCK_D)
    q0, k0, v0, g0 = z * sq_z + h * sq_h, z * sk_z + h * sk_h, z * sv_z + h * sv_h, z * sg_z + h * sg_h
    kv = tl.zeros([BLOCK_D, BLOCK_D], dtype=tl.float32)
    gkv = tl.zeros([BLOCK_D, BLOCK_D], dtype=tl.float32)
    n0 = 0
    while n0 < N:
        rows = n0 + tl.arange(0, BLOCK_N)
        kv += tl.dot(tl.trans(_tile(k_ptr, k0, sk_n, rows, cols, N, D)), _tile(v_ptr, v0, sv_n, rows, cols, N, D),
                     input_precision=PRECISION)
        gkv += tl.dot(tl.trans(_tile(q_ptr, q0, sq_n, rows, cols, N, D)), _tile(g_ptr, g0, sg_n, rows, cols, N, D),
                      input_precision=PRECISION)
        n0 += BLOCK_N
    kv_r = kv.to(q_ptr.dtype.element_ty)
    gkv_r = (gkv * scale).to(q_ptr.dtype.element_ty)
    n0 = 0
    while n0 < N:
        rows = n0 + tl.arange(0, BLOCK_N)
        gt = _tile(g_ptr, g0, sg_n, rows, cols, N, D)
        _store(gq_ptr, q0, sq_n, rows, cols, N, D, tl.dot(gt, tl.trans(kv_r), input_precision=PRECISION) * scale)
        vt = _tile(v_ptr, v0, sv_n, rows, cols, N, D)
        _store(gk_ptr, k0, sk_n, rows, cols, N, D, tl.dot(vt, tl.trans(gkv_r), input_precision=PRECISION))
        kt = _tile(k_ptr, k0, sk_n, rows, cols, N, D)
        _store(gv_ptr, v0, sv_n, rows, cols, N, D, tl.dot(kt, gkv_r, input_precision=PRECISION))
        n0 += BLOCK_N
