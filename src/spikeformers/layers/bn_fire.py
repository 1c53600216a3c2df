"""`bn_fire(bn, neuron, x, shape)`: `neuron(bn(x).view(shape))`, as one fused op where it can be; `fire(layer,
neuron, x)`: `neuron(layer(x))` through it, for the conv/Linear + BN layers of `time.py`.

Nearly every BatchNorm of the zoo feeds a neuron (conv/Linear -> BN -> LIF). Training on CUDA, the fused op
runs BN's statistics kernels and then the fused kernel (`kernels/bn_fire.py`): the neuron reads BN's input and applies BN's scale
and shift itself, and its backward produces BN's partial sums, so BN's output and its gradient are never read
back (26 -> 18 bytes per bf16 element in the step; measured speed: BENCHMARKS.md). Outputs, gradients and
running statistics are the unfused path's: the kernels round BN's output and its gradient to x's dtype
where the unfused path stores them (tests/test_bn_fire.py checks against torch's BatchNorm and the
reference LIF).

Where it applies: our BatchNorm1d/2d would take its kernels (training, CUDA, a channel-fastest input), the
neuron is an IFNode or LIFNode with a built-in surrogate whose backend allows a kernel, and nobody hooks
either module (the energy counter and the firing-rate monitor read the neuron's output). Elsewhere,
including PLIF, torch.compile and evaluation, it is the unfused `neuron(bn(x).view(shape))`.
"""
from __future__ import annotations

from typing import Optional, Tuple

from torch import Tensor, nn
from torch.nn.modules import module as _module

from ..kernels import load
from ..neurons.base import mark_binary
from ..neurons.lif import IFNode, LIFNode
from .batchnorm import BatchNorm1d, BatchNorm2d

__all__ = ["ENABLED", "bn_fire", "fire", "normalize"]

#: False: never fuse (the benchmarks' "-unfused" settings compare both paths in one run)
ENABLED = True


def _hooked(m: nn.Module) -> bool:
    """Does a forward hook watch `m` (its own, or a global one)? Then it must run as a module call."""
    return bool(m._forward_hooks or m._forward_pre_hooks or _module._global_forward_hooks
                or _module._global_forward_pre_hooks)


def _kernel_params(bn: nn.Module, neuron: nn.Module, x: Tensor) -> Optional[tuple]:
    """The neuron's kernel parameters when the fused op applies to `neuron(bn(x))`, else None."""
    if not ENABLED or type(neuron) not in (IFNode, LIFNode) or not isinstance(bn, (BatchNorm1d, BatchNorm2d)):
        return None
    if neuron.backend == "torch" or not (x.is_cuda or neuron.backend == "triton") or not bn._kernels_apply(x):
        return None
    if _hooked(bn) or _hooked(neuron):
        return None
    return neuron.kernel_params(load("neuron"))  # imports Triton: bn's kernels apply, so it is there


def normalize(bn: nn.Module, x: Tensor, pre_bias: Optional[Tensor] = None) -> Tensor:
    """`bn(x)`, passing `pre_bias` only when there is one (torch's own BatchNorm, e.g. the SyncBatchNorm that
    `run.sync_bn` swaps in, takes none; the layers then add their bias themselves)."""
    return bn(x) if pre_bias is None else bn(x, pre_bias=pre_bias)


def bn_fire(bn: nn.Module, neuron: nn.Module, x: Tensor, shape: Tuple[int, ...],
            pre_bias: Optional[Tensor] = None) -> Tensor:
    """`neuron(bn(x).view(shape))` for BN's input x [T*B, ...] (time outermost) and the neuron's input shape
    [T, ...]; `pre_bias`: a bias x still lacks, which `bn` takes as `pre_bias` (see `BatchNorm1d.forward`)."""
    T = shape[0]
    params = _kernel_params(bn, neuron, x)
    rows = bn._as_rows(x) if params is not None else None
    if rows is None or rows.shape[0] < 2 or rows.shape[0] % T:
        return neuron(normalize(bn, x, pre_bias).view(shape))
    bn._count_batch(x)
    y = load("bn_fire").bn_fire(rows, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.momentum, bn.eps,
                                pre_bias, T, params)
    return mark_binary(bn._like_input(y, x).view(shape))  # IF and LIF spikes


def fire(layer: nn.Module, neuron: nn.Module, x: Tensor) -> Tensor:
    """`neuron(layer(x))`, through `layer.fire` (BN and the neuron fused) where the layer has one and no hook
    watches it."""
    f = getattr(layer, "fire", None)
    return neuron(layer(x)) if f is None or _hooked(layer) else f(x, neuron)
