"""Triton kernels for 2-D max pooling on channels_last (NHWC) tensors, used by `layers/maxpool.py`.

Why: torch's NHWC pooling kernels are slow on the 3x3/stride-2 pools of Spikformer's patch splitting and
keep an int64 index per output; these keep an int8 window position (measured costs: benchmarks/NOTES.md).

`pool_forward`: each output is the maximum over its in-bounds window (padding never wins), chosen as
torch chooses it: windows are scanned row by row, a value replaces the running maximum when it is
larger or NaN, and the first in-bounds position is the index of a window that holds only -inf. The
winner's position in the window (0 .. KH*KW-1) is stored as int8.
`pool_backward`: gathers, for each input position, the gradients of the (at most ceil(KH/S) x
ceil(KW/S)) windows that chose it, in ascending output order, summed in fp32: every gradient element
is written once (no atomics, no zero fill, deterministic).
"""
from __future__ import annotations

import triton
import triton.language as tl

__all__ = ["pool_forward", "pool_backward"]


@triton.jit
def _block(P, H, W, C, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """This program's BLOCK_P pixels of the P = N * H * W of an [N, H, W, C] tensor and BLOCK_C channels:
    (flat pixel, channel, their masks, and each pixel's n, row, column)."""
    pix = tl.program_id(0).to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    return pix, cols, pix < P, cols < C, pix // (W * H), (pix // W) % H, pix % W


@triton.jit
def pool_forward(x_ptr, y_ptr, idx_ptr, P, H, W, OH, OW, C,
                 KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr, PH: tl.constexpr,
                 PW: tl.constexpr, SAVE: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """P = N * OH * OW output pixels; x [N, H, W, C] and y, idx [N, OH, OW, C] in memory."""
    pix, cols, pmask, cmask, n, oh, ow = _block(P, OH, OW, C, BLOCK_P, BLOCK_C)
    h0 = oh * SH - PH
    w0 = ow * SW - PW
    first = (tl.maximum(h0, 0) - h0) * KW + (tl.maximum(w0, 0) - w0)  # torch's index for an all -inf window
    best = tl.full([BLOCK_P, BLOCK_C], float("-inf"), tl.float32)
    arg = tl.zeros([BLOCK_P, BLOCK_C], tl.int32) + first.to(tl.int32)[:, None]
    for i in tl.static_range(KH):
        for j in tl.static_range(KW):
            ih = h0 + i
            iw = w0 + j
            ok = pmask & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
            offs = ((n * H + ih) * W + iw)[:, None] * C + cols[None, :]
            m = ok[:, None] & cmask[None, :]
            val = tl.load(x_ptr + offs, mask=m, other=float("-inf")).to(tl.float32)
            take = m & ((val > best) | (val != val))
            best = tl.where(take, val, best)
            arg = tl.where(take, i * KW + j, arg)
    out = pix[:, None] * C + cols[None, :]
    m = pmask[:, None] & cmask[None, :]
    tl.store(y_ptr + out, best.to(y_ptr.dtype.element_ty), mask=m)
    if SAVE:
        tl.store(idx_ptr + out, arg.to(tl.int8), mask=m)


@triton.jit
def pool_backward(g_ptr, idx_ptr, gx_ptr, Q, H, W, OH, OW, C,
                  KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr, PH: tl.constexpr,
                  PW: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """Q = N * H * W input pixels; g, idx [N, OH, OW, C] and gx [N, H, W, C] in memory."""
    pix, cols, pmask, cmask, n, ih, iw = _block(Q, H, W, C, BLOCK_P, BLOCK_C)
    top = (ih + PH) // SH  # the last window (in output rows) that contains row ih
    left = (iw + PW) // SW
    AH: tl.constexpr = (KH + SH - 1) // SH  # windows per input row / column, at most
    AW: tl.constexpr = (KW + SW - 1) // SW
    acc = tl.zeros([BLOCK_P, BLOCK_C], tl.float32)
    for a in tl.static_range(AH):
        for b in tl.static_range(AW):
            oh = top - (AH - 1) + a
            ow = left - (AW - 1) + b
            r = ih + PH - oh * SH  # this position's row and column inside window (oh, ow)
            s = iw + PW - ow * SW
            ok = pmask & (oh >= 0) & (oh < OH) & (ow >= 0) & (ow < OW) & (r < KH) & (s < KW)
            offs = ((n * OH + oh) * OW + ow)[:, None] * C + cols[None, :]
            m = ok[:, None] & cmask[None, :]
            won = tl.load(idx_ptr + offs, mask=m, other=-1).to(tl.int32) == (r * KW + s).to(tl.int32)[:, None]
            g = tl.load(g_ptr + offs, mask=m & won, other=0.0).to(tl.float32)
            acc += g
    tl.store(gx_ptr + pix[:, None] * C + cols[None, :], acc.to(gx_ptr.dtype.element_ty), mask=pmask[:, None] & cmask[None, :])
