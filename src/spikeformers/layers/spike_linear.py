"""`spike_linear(x, weight)`: `F.linear(x, weight)` for binary spikes x, saving x as bits for backward.

A Linear keeps its input for the weight gradient until backward; for spikes that is 16 bits per element (bf16)
where one carries the information. This op computes the same product, stores x with `kernels/pack.py` (one bit
per element) and unpacks it in backward, where it computes the gradients exactly as autograd's linear does
(the same matrix products on the same operands: grad_x = g W, grad_W = g^T x, in the autocast dtype), so they
are bit-identical to `F.linear`'s (tests/test_spike_linear.py). Under autocast the weight is used in the
autocast dtype, as `F.linear` uses it. `LinearBN` calls it where its input is tagged as binary spikes
(`neurons.base.mark_binary`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..kernels.pack import pack_bits, unpack_bits

__all__ = ["spike_linear"]


class _SpikeLinear(torch.autograd.Function):
    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, x: Tensor, weight: Tensor) -> Tensor:
        y = F.linear(x, weight)  # autocast casts both operands as it would outside
        words, ctx.x_shape, ctx.x_dtype = pack_bits(x.to(y.dtype))
        ctx.save_for_backward(weight, words)
        return y

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, g: Tensor):
        weight, words = ctx.saved_tensors
        x = unpack_bits((words, ctx.x_shape, ctx.x_dtype))
        w = weight.to(ctx.x_dtype)
        g2 = g.reshape(-1, g.shape[-1]).to(ctx.x_dtype)
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = g2.mm(w).view(*g.shape[:-1], w.shape[1])
        if ctx.needs_input_grad[1]:
            gw = g2.t().mm(x.reshape(-1, x.shape[-1])).to(weight.dtype)
        return gx, gw


def spike_linear(x: Tensor, weight: Tensor) -> Tensor:
    """`F.linear(x, weight)` (no bias) for x holding only 0 and 1, with x kept as bits for backward."""
    return _SpikeLinear.apply(x, weight)
