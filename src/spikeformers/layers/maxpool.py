"""`MaxPool2d`: torch's, with the forward and backward of channels_last CUDA inputs run by the Triton
kernels of `triton_pool.py`.

Same arguments, output and gradient as `nn.MaxPool2d` (a subclass), including which position of a tied
window gets the gradient (the first in row-major order, as torch). The kernels keep an int8 position
per output for backward, where torch keeps an int64 index. They apply to 4-D channels_last tensors
with dilation 1, `ceil_mode=False` and `return_indices=False`, on CUDA; everything else (and
`torch.compile` tracing) is torch's own forward. `backend`: "auto", "torch" (never the kernels) or
"triton" (on the CPU only under TRITON_INTERPRET=1, which is how the CPU tests run them). Measured
speed: benchmarks/NOTES.md.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn

__all__ = ["MaxPool2d"]

_BACKENDS = ("auto", "torch", "triton")
_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
# tiles: benchmarks/pool_kernel.py on an H200 at Spikformer-8-512's 224 x 224 pools, the sum over its four pools:
# forward 1.06 ms at 16 pixels x 64 channels against 1.60 ms at 32 x 64, backward best at 32 x 64 (1.53 ms)
_FWD_BLOCKS = dict(BLOCK_P=16, BLOCK_C=64)
_BWD_BLOCKS = dict(BLOCK_P=32, BLOCK_C=64)


def _grid(pixels: int, C: int, blocks: dict) -> Tuple[int, int]:
    return -(-pixels // blocks["BLOCK_P"]), -(-C // blocks["BLOCK_C"])


def _pair(v) -> Tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


class _MaxPoolFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, kernel: tuple, stride: tuple, padding: tuple, save: bool) -> Tensor:
        from ..neurons.kernels.launch import launch
        from .triton_pool import pool_forward

        N, C, H, W = x.shape
        OH = (H + 2 * padding[0] - kernel[0]) // stride[0] + 1
        OW = (W + 2 * padding[1] - kernel[1]) // stride[1] + 1
        y = torch.empty((N, C, OH, OW), dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
        idx = torch.empty_like(y, dtype=torch.int8) if save else y
        P = N * OH * OW
        launch(pool_forward, _grid(P, C, _FWD_BLOCKS), (x, y, idx, P, H, W, OH, OW, C),
               dict(KH=kernel[0], KW=kernel[1], SH=stride[0], SW=stride[1], PH=padding[0], PW=padding[1], SAVE=save,
                    **_FWD_BLOCKS), dict(num_warps=4))
        if save:
            ctx.save_for_backward(idx)
            ctx.geometry, ctx.in_shape = (kernel, stride, padding), x.shape
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: Tensor):
        from ..neurons.kernels.launch import launch
        from .triton_pool import pool_backward

        (idx,) = ctx.saved_tensors
        kernel, stride, padding = ctx.geometry
        N, C, H, W = ctx.in_shape
        g = g.contiguous(memory_format=torch.channels_last)
        gx = torch.empty((N, C, H, W), dtype=g.dtype, device=g.device, memory_format=torch.channels_last)
        Q = N * H * W
        launch(pool_backward, _grid(Q, C, _BWD_BLOCKS), (g, idx, gx, Q, H, W, idx.shape[2], idx.shape[3], C),
               dict(KH=kernel[0], KW=kernel[1], SH=stride[0], SW=stride[1], PH=padding[0], PW=padding[1], **_BWD_BLOCKS),
               dict(num_warps=4))
        return gx, None, None, None, None


class MaxPool2d(nn.MaxPool2d):
    def __init__(self, *args, backend: str = "auto", **kwargs):
        super().__init__(*args, **kwargs)
        if backend not in _BACKENDS:
            raise ValueError(f"MaxPool2d: unknown backend {backend!r}; valid backends: {', '.join(_BACKENDS)}")
        self.backend = backend

    def _kernels_apply(self, x: Tensor) -> bool:
        if self.backend == "torch" or self.ceil_mode or self.return_indices or _pair(self.dilation) != (1, 1):
            return False
        if x.dim() != 4 or x.dtype not in _DTYPES or not x.is_contiguous(memory_format=torch.channels_last):
            return False
        kh, kw = _pair(self.kernel_size)
        if kh * kw > 127 or torch.compiler.is_compiling():  # the window position is stored as int8
            return False
        from ..neurons.kernels import interpreting, triton_available

        # the device first: on the CPU nothing may import Triton (tests/test_kernels.py)
        return (x.is_cuda or (self.backend == "triton" and interpreting())) and triton_available()

    def forward(self, x: Tensor) -> Tensor:
        if not self._kernels_apply(x):
            return super().forward(x)
        kernel, stride, padding = _pair(self.kernel_size), _pair(self.stride), _pair(self.padding)
        fits = all(2 * p <= k and n + 2 * p >= k for n, k, p in zip(x.shape[2:], kernel, padding))
        if not fits:
            return super().forward(x)  # torch's own error for an invalid geometry
        save = torch.is_grad_enabled() and x.requires_grad  # keep the window positions for backward
        return _MaxPoolFunction.apply(x, kernel, stride, padding, save)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, backend={self.backend!r}"
