"""`MaxPool2d`: torch's, with the forward and backward of channels_last CUDA inputs run by the Triton
kernels of `kernels/maxpool.py`.

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

from ..kernels import load, usable  # imports no Triton until a kernel is about to run

__all__ = ["MaxPool2d"]

_BACKENDS = ("auto", "torch", "triton")
_DTYPES = (torch.float32, torch.bfloat16, torch.float16)  # those the kernels take


def _pair(v) -> Tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


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
        return usable(x, self.backend)

    def forward(self, x: Tensor) -> Tensor:
        if not self._kernels_apply(x):
            return super().forward(x)
        kernel, stride, padding = _pair(self.kernel_size), _pair(self.stride), _pair(self.padding)
        fits = all(2 * p <= k and n + 2 * p >= k for n, k, p in zip(x.shape[2:], kernel, padding))
        if not fits:
            return super().forward(x)  # torch's own error for an invalid geometry
        return load("maxpool").max_pool2d(x, kernel, stride, padding)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, backend={self.backend!r}"
