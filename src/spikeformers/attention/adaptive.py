"""Adaptive-threshold spike attention, after the description of arXiv 2503.11234 ("Energy-efficient
Spiking Transformer with adaptive attention") in the survey of spiking-transformer designs this project
started from. The paper itself could not be found or verified: this follows that description, not a paper.

    Q, K, V = HSN(BN(X W))      spiking neurons under homeostatic threshold control: each channel's
                                threshold is steered so that its firing rate stays in 5-15 %
    q, k, v = mean over T       spike counts / T: firing rates in [0, 1]       [1, B, H, N, d]
    A       = softmax over the non-zero entries of q k^T * scale (zero entries, where no spikes
              coincide, are masked out; a row without any non-zero entry gives zeros)
    out     = SN(BN(Linear(A v))), the same input at every one of the T steps
Time is integrated away before the attention, so it runs once per input rather than once per step
(q, k, v and the product carry a time axis of size 1). The first layer of a model using it stays
analog (SPS's first conv sees the real-valued image), as that description prescribes.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..layers.bn_fire import fire
from ..neurons.homeostasis import Homeostatic
from .base import AxisSum, SpikingAttention, merge_heads, register_attention, split_heads

__all__ = ["AdaptiveAttention", "NonzeroSoftmaxProduct"]


class NonzeroSoftmaxProduct(nn.Module):
    """softmax over the non-zero entries of scale * Q K^T, times V, on [..., N, d] (order "qk_v").

    Zero scores are excluded from the normalisation (not merely zeroed afterwards), and a row whose
    scores are all zero yields a zero output; gradients stay finite in both cases.
    """

    FORMS = ("nonzero", "source")

    def __init__(self, scale: float, form: str = "nonzero"):
        super().__init__()
        if form not in self.FORMS:
            raise ValueError(f"unknown softmax form {form!r}; valid: {', '.join(self.FORMS)}")
        self.scale, self.form = float(scale), form

    def order_for(self, q_shape) -> str:
        return "qk_v"

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        scores = (q @ k.transpose(-2, -1)) * self.scale  # [.., N, N]
        keep = scores != 0
        if self.form == "source":  # the described form: softmax over every score, then zero the zero scores
            return (scores.softmax(-1) * keep) @ v
        top = scores.masked_fill(~keep, float("-inf")).amax(-1, keepdim=True)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))  # all-zero rows
        e = torch.exp(scores - top) * keep
        # a non-empty row sums to >= 1 (its maximum contributes exp(0)); an empty one to 0 -> output 0
        return (e / e.sum(-1, keepdim=True).clamp_min(1.0)) @ v

    def extra_repr(self) -> str:
        return f"scale={self.scale}, form={self.form!r}"


@register_attention("adaptive")
class AdaptiveAttention(SpikingAttention):
    """Args:
        target_rate: firing-rate band (lo, hi) the Q/K/V thresholds are steered into (0.05, 0.15).
        rate_step: multiplicative step of the threshold controller per training forward (0.05).
        scale: score scale before the softmax (None: d^-0.5, as described).
        softmax: "nonzero" (default: normalised over the non-zero scores only) or "source" (the described form
            source's form: softmax over every score, then the entries whose score is 0 set to 0).
    The Q/K/V neurons are the backbone's `neuron` (e.g. "asn" for spike-triggered adaptation within T)
    wrapped in `Homeostatic` controllers (see neurons/homeostasis.py for the rule).
    """

    domains = {"q": "real", "k": "real", "v": "real"}  # firing rates, multiples of 1/T

    def __init__(self, dim: int, num_heads: int, *, neuron: str = "lif", neuron_opts: Optional[Dict[str, Any]] = None,
                 qkv_bias: bool = True, out_neuron: bool = True, norm: str = "batch", target_rate: Sequence[float] = (0.05, 0.15),
                 rate_step: float = 0.05, scale: Optional[float] = None, softmax: str = "nonzero"):
        super().__init__(dim, num_heads, neuron=neuron, neuron_opts=neuron_opts, qkv_bias=qkv_bias, out_neuron=out_neuron,
                         norm=norm)
        if scale is not None and not float(scale) > 0:
            raise ValueError(f"AdaptiveAttention: scale must be positive or None, got {scale!r}")
        self.q, self.k, self.v = (self.linear_norm(dim, dim, qkv_bias) for _ in range(3))
        self.q_neuron, self.k_neuron, self.v_neuron = (
            Homeostatic(self.make_neuron(), dim, target=target_rate, step=rate_step) for _ in range(3))
        self.count = AxisSum(dim=0)  # spike counts over T
        self.product = NonzeroSoftmaxProduct((dim // num_heads) ** -0.5 if scale is None else float(scale), softmax)

    def project(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        T, h = x.shape[0], self.num_heads
        rate = lambda s: split_heads(self.count(s), h) / T  # noqa: E731  [1, B, H, N, d] in [0, 1]
        return rate(fire(self.q, self.q_neuron, x)), rate(fire(self.k, self.k_neuron, x)), rate(fire(self.v, self.v_neuron, x))

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        return self.product(q, k, v)

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        y = self.proj(merge_heads(self.attend(*self.project(x))))  # [1, B, N, D]: projected once
        return self.proj_neuron(y.expand(x.shape[0], -1, -1, -1))  # the same input at each of the T steps
