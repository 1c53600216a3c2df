"""`BatchNorm1d` / `BatchNorm2d`: torch's, with the training-mode forward and backward on CUDA run by the
Triton kernels of `kernels/batchnorm.py` when the input is channel-fastest (2-D `[M, C]`, or 4-D channels_last).

Same parameters, buffers, state-dict keys and semantics as `nn.BatchNorm1d/2d` (they are subclasses):
batch statistics with the biased variance, running statistics updated with the unbiased one and
`momentum`, `num_batches_tracked` counted. Everything else (eval mode, the CPU, other layouts,
`momentum=None`, no affine or running statistics, `torch.compile` tracing) is torch's own forward.
`backend`: "auto" (kernels where they apply), "torch" (never), "triton" (always; on the CPU only under
TRITON_INTERPRET=1, which is how the CPU tests run them). Measured speed: BENCHMARKS.md.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from ..kernels import load, usable  # imports no Triton until a kernel is about to run

__all__ = ["BatchNorm1d", "BatchNorm2d"]

_BACKENDS = ("auto", "torch", "triton")
_DTYPES = (torch.float32, torch.bfloat16, torch.float16)  # those of kernels/batchnorm.py


class _KernelForward:
    """The training forward through `_BatchNormFunction` when it applies, else torch's."""

    def _set_backend(self, backend: str) -> None:
        if backend not in _BACKENDS:
            raise ValueError(f"{type(self).__name__}: unknown backend {backend!r}; valid backends: {', '.join(_BACKENDS)}")
        self.backend = backend

    def _as_rows(self, x: Tensor) -> Optional[Tensor]:
        """x as a channel-fastest [M, C] view, or None (then torch's forward runs)."""
        if x.dim() == 2 and x.is_contiguous():
            return x
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1:
            return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])  # a view: channels_last is NHWC in memory
        return None

    def _kernels_apply(self, x: Tensor) -> bool:
        if self.backend == "torch" or not (self.training and self.affine and self.track_running_stats):
            return False
        if self.momentum is None or x.dtype not in _DTYPES or torch.compiler.is_compiling():
            return False
        return usable(x, self.backend)

    def forward(self, x: Tensor, pre_bias: Optional[Tensor] = None) -> Tensor:
        """`pre_bias`: normalise `x + pre_bias` (per channel), for a Linear or conv whose bias was left out
        (`will_fold_bias`): batch statistics cancel that bias, so the kernels only add it to the running
        mean, and its gradient is exactly zero, instead of a column sum that rounds to about zero."""
        rows = self._as_rows(x) if self._kernels_apply(x) else None
        if rows is None or rows.shape[0] < 2:  # torch's forward (and its error for one value per channel)
            if pre_bias is not None:
                x = x + pre_bias.view(-1, *[1] * (x.dim() - 2)).to(x.dtype)
            return super().forward(x)
        self._count_batch(x)
        y = load("batchnorm").batch_norm(rows, self.weight, self.bias, self.running_mean, self.running_var,
                                         self.momentum, self.eps, pre_bias)
        return self._like_input(y, x)

    def _count_batch(self, x: Tensor) -> None:
        """Torch's input check and batch count, for a training forward through the kernels."""
        self._check_input_dim(x)
        self.num_batches_tracked.add_(1)

    @staticmethod
    def _like_input(y: Tensor, x: Tensor) -> Tensor:
        """Rows [M, C] computed from `_as_rows(x)` back in x's shape (4-D: channels_last, like x)."""
        if x.dim() == 2:
            return y
        N, C, H, W = x.shape
        return y.view(N, H, W, C).permute(0, 3, 1, 2)

    def will_fold_bias(self, x: Tensor) -> bool:
        """Would `forward(layer(x), pre_bias)` take the kernels, for a layer whose output keeps x's device
        and dtype class? Then the layer may leave its bias out and pass it as `pre_bias`."""
        return self._kernels_apply(x)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, backend={self.backend!r}"


class BatchNorm1d(_KernelForward, nn.BatchNorm1d):
    def __init__(self, num_features: int, *args, backend: str = "auto", **kwargs):
        super().__init__(num_features, *args, **kwargs)
        self._set_backend(backend)


class BatchNorm2d(_KernelForward, nn.BatchNorm2d):
    def __init__(self, num_features: int, *args, backend: str = "auto", **kwargs):
        super().__init__(num_features, *args, **kwargs)
        self._set_backend(backend)
