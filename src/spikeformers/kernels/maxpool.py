"""Max-pooling of channels_last tensors through the kernels of `triton_maxpool.py` (`layers/maxpool.py`
decides where they apply): an int8 window position per output is kept for backward, where torch keeps an
int64 index; a tied window's gradient goes to its first position in row-major order, as torch's.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

from .launch import launch
from .triton_maxpool import pool_backward, pool_forward

__all__ = ["max_pool2d", "FWD_BLOCKS", "BWD_BLOCKS"]

# tiles: benchmarks/pool_kernel.py on an H200 (2026-11-28, not kept as a record) at Spikformer-8-512's 224 x 224
# pools, the sum over its four pools:
# forward 1.06 ms at 16 pixels x 64 channels against 1.60 ms at 32 x 64, backward best at 32 x 64 (1.53 ms)
FWD_BLOCKS = dict(BLOCK_P=16, BLOCK_C=64)
BWD_BLOCKS = dict(BLOCK_P=32, BLOCK_C=64)


def _grid(pixels: int, C: int, blocks: dict) -> Tuple[int, int]:
    return -(-pixels // blocks["BLOCK_P"]), -(-C // blocks["BLOCK_C"])


class _MaxPoolFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, kernel: tuple, stride: tuple, padding: tuple, save: bool) -> Tensor:
        N, C, H, W = x.shape
        OH = (H + 2 * padding[0] - kernel[0]) // stride[0] + 1
        OW = (W + 2 * padding[1] - kernel[1]) // stride[1] + 1
        y = torch.empty((N, C, OH, OW), dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
        idx = torch.empty_like(y, dtype=torch.int8) if save else y
        P = N * OH * OW
        launch(pool_forward, _grid(P, C, FWD_BLOCKS), (x, y, idx, P, H, W, OH, OW, C),
               dict(KH=kernel[0], KW=kernel[1], SH=stride[0], SW=stride[1], PH=padding[0], PW=padding[1], SAVE=save,
                    **FWD_BLOCKS), dict(num_warps=4))
        if save:
            ctx.save_for_backward(idx)
            ctx.geometry, ctx.in_shape = (kernel, stride, padding), x.shape
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: Tensor):
        (idx,) = ctx.saved_tensors
        kernel, stride, padding = ctx.geometry
        N, C, H, W = ctx.in_shape
        g = g.contiguous(memory_format=torch.channels_last)
        gx = torch.empty((N, C, H, W), dtype=g.dtype, device=g.device, memory_format=torch.channels_last)
        Q = N * H * W
        launch(pool_backward, _grid(Q, C, BWD_BLOCKS), (g, idx, gx, Q, H, W, idx.shape[2], idx.shape[3], C),
               dict(KH=kernel[0], KW=kernel[1], SH=stride[0], SW=stride[1], PH=padding[0], PW=padding[1], **BWD_BLOCKS),
               dict(num_warps=4))
        return gx, None, None, None, None


def max_pool2d(x: Tensor, kernel: Tuple[int, int], stride: Tuple[int, int], padding: Tuple[int, int]) -> Tensor:
    """Max-pool of a 4-D channels_last x (dilation 1, floor mode), with autograd."""
    save = torch.is_grad_enabled() and x.requires_grad  # keep the window positions for backward
    return _MaxPoolFunction.apply(x, kernel, stride, padding, save)
