"""Bipolar Self-attention (BSA), "Bipolar Self-attention for Spiking Transformers" (OpenReview
nG45z7lJ7D, NeurIPS 2025 submission; no code or full text available).

    Q, K = SN_bipolar(BN(X W_Q)), SN_bipolar(BN(X W_K))   ternary {-1, 0, +1}
    V    = SN(BN(X W_V))                                   binary {0, 1}
    out  = SN_{0.5}(Shiftmax(scale * Q K^T) V), then SN(BN(Linear(out)))
Ternary Q K^T counts homopolar pairs (+/+, -/-) as +1 and heteropolar pairs as -1, which binary spikes
cannot express. Shiftmax (see shiftmax.py) restores approximate row-stochasticity with shifts only.

Choices where the abstract is silent: `scale` defaults to 1 (no scaling), so the scores stay integers
and every Shiftmax weight is an exact power of two (a shift); base 2 is already softer than softmax's
base e by a factor ln 2. Use scale=d**-0.5 for softmax-like temperature (weights are then no longer
pure shifts). The output neuron uses V_th = 0.5, the attention-neuron convention of every official repo.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from ..neurons.registry import create_neuron
from .base import SpikingAttention, register_attention
from .shiftmax import ShiftmaxProduct

__all__ = ["BipolarAttention"]


@register_attention("bipolar")
class BipolarAttention(SpikingAttention):
    """Args: bipolar_opts (options of the Q/K `bipolar` neurons), scale (of the scores before Shiftmax,
    default 1.0), attn_threshold (output neuron, 0.5)."""

    domains = {"q": "ternary", "k": "ternary", "v": "binary"}

    def __init__(self, dim: int, num_heads: int, *, neuron: str = "lif", neuron_opts: Optional[Dict[str, Any]] = None,
                 qkv_bias: bool = True, out_neuron: bool = True, norm: str = "batch", bipolar_opts: Optional[Dict[str, Any]] = None,
                 scale: float = 1.0, attn_threshold: float = 0.5):
        super().__init__(dim, num_heads, neuron=neuron, neuron_opts=neuron_opts, qkv_bias=qkv_bias, out_neuron=out_neuron,
                         norm=norm)
        if not float(scale) > 0:
            raise ValueError(f"BipolarAttention: scale must be positive, got {scale!r}")
        self.q, self.k, self.v = (self.linear_norm(dim, dim, qkv_bias) for _ in range(3))
        self.q_neuron = create_neuron("bipolar", **(bipolar_opts or {}))
        self.k_neuron = create_neuron("bipolar", **(bipolar_opts or {}))
        self.v_neuron = self.make_neuron()
        self.product = ShiftmaxProduct(scale)
        self.attn_neuron = self.make_neuron(v_threshold=attn_threshold)
