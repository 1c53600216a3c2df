"""The linear parts of a converted network: the input pulse, Linear and conv layers with BatchNorm folded in
and their bias delivered once, and the readout.

In the converted network every tensor carries, at step t, the increment of its QANN value: summed over the
steps, it is the QANN's tensor. A linear map commutes with that sum, so a Linear or conv converts exactly if
its bias (BatchNorm's shift folded in) arrives once, at step 0, and the image arrives once too
(`PulseEncoder`). Steps on which a layer's input is all zero are not computed (an event-driven layer does
nothing there; the energy counter then charges only the steps that ran, e.g. the analog first layer once).

    PulseEncoder(T)           x -> [x, 0, ..., 0]                               (T steps)
    StepLinear(w, b)          x[t] -> x[t] w^T + (t == 0) b                      on [T, ..., in]
    StepConv(conv, b)         the same for a Conv2d on [T, B, C, H, W] or folded [T*B, C, H, W] (`steps`)
    SumReadout(w, b)          T x StepLinear: the model averages its per-step logits over T, so the average
                              is the summed (QANN) logits
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from ...encoding import Encoder

__all__ = ["PulseEncoder", "StepLinear", "StepConv", "SumReadout", "fold_batchnorm"]


class PulseEncoder(Encoder):
    """The static image at step 0 and zeros after: summed over time, the network sees the image once."""

    def forward(self, x: Tensor) -> Tensor:
        out = x.new_zeros((self.T, *x.shape))
        out[0] = x
        return out


def fold_batchnorm(weight: Tensor, bias: Optional[Tensor], bn: Optional[nn.Module]):
    """(weight, bias) of `bn(layer(x))` in eval mode as one layer: w' = w g, b' = (b - mean) g + beta with
    g = gamma / sqrt(var + eps) per output channel (weight's first axis). `bn` None: the layer as it is."""
    w = weight.detach()
    b = bias.detach() if bias is not None else w.new_zeros(w.shape[0])
    if bn is None:
        return w.clone(), b.clone()
    g = bn.weight.detach() / torch.sqrt(bn.running_var.detach() + bn.eps)
    return w * g.view(-1, *[1] * (w.dim() - 1)), (b - bn.running_mean.detach()) * g + bn.bias.detach()


def _active_steps(x: Tensor, T: int) -> Optional[Tensor]:
    """Indices of the steps of x ([T, ...] or folded [T*B, ...]) with any non-zero value, or None if all have."""
    any_ = x.reshape(T, -1).ne(0).any(1)
    return None if bool(any_.all()) else any_.nonzero().flatten()


def _run_active(layer: nn.Module, x: Tensor, T: int) -> Tensor:
    """layer(x) on the active steps of time-first x [T, ...] (output steps without input are zero)."""
    idx = _active_steps(x, T)
    if idx is None:
        return layer(x)
    y = layer(x[idx])
    out = y.new_zeros((T, *y.shape[1:]))
    out[idx] = y
    return out


class StepLinear(nn.Module):
    """Linear on time-first tokens [T, ..., in] with its bias at step 0 only. `linear` (no bias) is an
    `nn.Linear`, so the energy counter sees the inputs it ran on."""

    def __init__(self, weight: Tensor, bias: Tensor):
        super().__init__()
        self.linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False, device=weight.device, dtype=weight.dtype)
        self.linear.weight.data.copy_(weight)
        self.bias = nn.Parameter(bias.clone())

    def forward(self, x: Tensor) -> Tensor:
        y = _run_active(self.linear, x, x.shape[0])
        y[0] = y[0] + self.bias.to(y.dtype)
        return y


class SumReadout(StepLinear):
    """The classifier: T times `StepLinear`, since the model returns the mean of its per-step logits."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x) * x.shape[0]


class StepConv(nn.Module):
    """Conv2d with its bias at step 0 only, on [T, B, C, H, W] (what `ConvBN` receives). `conv` (no bias)
    keeps the source conv's geometry."""

    def __init__(self, conv: nn.Conv2d, weight: Tensor, bias: Tensor):
        super().__init__()
        self.conv = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                              conv.dilation, conv.groups, bias=False, device=weight.device, dtype=weight.dtype)
        self.conv.weight.data.copy_(weight)
        self.bias = nn.Parameter(bias.clone())

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5:
            raise ValueError(f"StepConv expects time-first maps [T, B, C, H, W], got shape {tuple(x.shape)}")
        T, B = x.shape[:2]
        idx = _active_steps(x, T)
        xs = x if idx is None else x[idx]
        y = self.conv(xs.flatten(0, 1)).unflatten(0, (xs.shape[0], B))
        if idx is not None:
            full = y.new_zeros((T, *y.shape[1:]))
            full[idx] = y
            y = full
        y[0] = y[0] + self.bias.to(y.dtype).view(-1, 1, 1)
        return y
