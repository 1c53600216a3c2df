"""`BatchNorm1d` / `BatchNorm2d`: torch's, with the training-mode forward and backward on CUDA run by the
Triton kernels of `triton_bn.py` when the input is channel-fastest (2-D `[M, C]`, or 4-D channels_last).

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

from ..neurons.kernels import interpreting, triton_available  # imports no Triton

__all__ = ["BatchNorm1d", "BatchNorm2d", "batch_statistics", "backward_from_sums", "kernels"]

_BACKENDS = ("auto", "torch", "triton")
_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


_FINAL = dict(BLOCK_P=64, BLOCK_C=32)  # the finalize kernels: 32 channels per program
_OPTS = dict(num_warps=4)


_KERNELS = None  # (launch, triton_bn) once imported: they import Triton, which nothing on the CPU path may


def kernels():
    """(the launcher, the `triton_bn` kernels module), imported on first use (a function-level import
    statement costs host time on every call)."""
    global _KERNELS
    if _KERNELS is None:
        from ..neurons.kernels.launch import launch
        from . import triton_bn

        _KERNELS = launch, triton_bn
    return _KERNELS


def _block_c(C: int) -> int:
    """Channels per program of the partial-sum and affine kernels."""
    return min(128, max(16, 1 << (C - 1).bit_length()))


def _plan(M: int, C: int):
    """(programs over rows, rows per program, channel blocks, BLOCK_C) for the partial sums: about 512
    programs, each summing a slab of rows that is a multiple of the 32-row tile."""
    bc = _block_c(C)
    nc = -(-C // bc)
    P = max(1, min(-(-M // 32), 512 // nc))
    rows = -(-M // (32 * P)) * 32
    return -(-M // rows), rows, nc, bc


def batch_statistics(x: Tensor, weight: Tensor, bias: Tensor, running_mean: Tensor, running_var: Tensor,
                     momentum: float, eps: float, pre_bias: Optional[Tensor]) -> Tensor:
    """BN's forward statistics of x [M, C] as fp32 [4, C] (mean, invstd, scale, shift: the output is
    x * scale + shift); updates the running statistics in place."""
    launch, k = kernels()
    M, C = x.shape
    P, rows, nc, bc = _plan(M, C)
    part = x.new_empty((2, P, C), dtype=torch.float32)
    stats = x.new_empty((4, C), dtype=torch.float32)
    mean, invstd, scale, shift = stats.unbind(0)
    launch(k.partial_sums, (P, nc), (x, x, x, part, M, C, rows), dict(PRODUCT=False, BLOCK_M=32, BLOCK_C=bc), _OPTS)
    pre = x if pre_bias is None else pre_bias
    launch(k.finalize_forward, (-(-C // 32),), (part, x, weight, bias, running_mean, running_var, mean, invstd, scale,
                                              shift, pre, part.shape[1], M, C, float(momentum), float(eps)),
           dict(UPDATE=True, PRE=pre_bias is not None, **_FINAL), _OPTS)
    return stats


def backward_from_sums(part: Tensor, gy: Tensor, x: Tensor, weight: Tensor, mean: Tensor, invstd: Tensor,
                       need_gx: bool) -> Tuple[Optional[Tensor], Tensor, Tensor]:
    """(dL/dx or None, dL/dweight, dL/dbias) from the [2, P, C] partial sums of dL/dy and dL/dy * (x - mean)."""
    launch, k = kernels()
    M, C = x.shape
    coef = x.new_empty((5, C), dtype=torch.float32)
    dw, db, a, b, c = coef.unbind(0)
    launch(k.finalize_backward, (-(-C // 32),), (part, weight, mean, invstd, dw, db, a, b, c, part.shape[1], M, C),
           dict(_FINAL), _OPTS)
    gx = None
    if need_gx:
        bc = _block_c(C)
        gx = torch.empty_like(x)
        launch(k.affine, (-(-M // 64), -(-C // bc)), (gy, x, gx, a, b, c, M, C), dict(TWO=True, BLOCK_M=64, BLOCK_C=bc),
               _OPTS)
    return gx, dw.to(weight.dtype), db.to(weight.dtype)


class _BatchNormFunction(torch.autograd.Function):
    """`apply(x [M, C], weight, bias, running_mean, running_var, momentum, eps, pre_bias)`; updates the
    running statistics in place. `pre_bias` (or None): a per-channel bias that x still lacks (see
    `_KernelForward.forward`); its gradient is exactly zero."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, running_mean: Tensor, running_var: Tensor,
                momentum: float, eps: float, pre_bias: Optional[Tensor] = None) -> Tensor:
        launch, k = kernels()
        M, C = x.shape
        mean, invstd, scale, shift = batch_statistics(x, weight, bias, running_mean, running_var, momentum, eps,
                                                      pre_bias).unbind(0)
        y = torch.empty_like(x)
        bc = _block_c(C)
        launch(k.affine, (-(-M // 64), -(-C // bc)), (x, x, y, scale, scale, shift, M, C),
               dict(TWO=False, BLOCK_M=64, BLOCK_C=bc), _OPTS)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.pre_bias = pre_bias is not None
        return y

    @staticmethod
    def backward(ctx, gy: Tensor):
        launch, k = kernels()
        x, weight, mean, invstd = ctx.saved_tensors
        gy = gy.contiguous()
        M, C = x.shape
        P, rows, nc, bc = _plan(M, C)
        part = x.new_empty((2, P, C), dtype=torch.float32)
        launch(k.partial_sums, (P, nc), (gy, x, mean, part, M, C, rows), dict(PRODUCT=True, BLOCK_M=32, BLOCK_C=bc), _OPTS)
        gx, dw, db = backward_from_sums(part, gy, x, weight, mean, invstd, ctx.needs_input_grad[0])
        return gx, dw, db, None, None, None, None, zero_bias_grad(ctx, weight, 7)


def zero_bias_grad(ctx, weight: Tensor, index: int) -> Optional[Tensor]:
    """The folded bias's gradient: batch statistics remove any per-channel shift of x, so it is exactly zero."""
    return weight.new_zeros(weight.shape) if ctx.pre_bias and ctx.needs_input_grad[index] else None


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
        # the device first: on the CPU nothing may import Triton (tests/test_kernels.py)
        return (x.is_cuda or (self.backend == "triton" and interpreting())) and triton_available()

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
        y = _BatchNormFunction.apply(rows, self.weight, self.bias, self.running_mean, self.running_var, self.momentum,
                                     self.eps, pre_bias)
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
