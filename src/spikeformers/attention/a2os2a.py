"""Accurate Addition-Only Spiking Self-Attention (A2OS2A), Guo et al., CVPR 2025 (arXiv 2503.00226).

    Q = SN_binary(BN(X W_Q))    {0, 1}
    K = ReLU(BN(X W_K))         real, >= 0 (not spiking)
    V = SN_ternary(BN(X W_V))   {-1, 0, +1}
    A2OS2A = SN(Q K^T V)        no softmax, no scale
Binary Q selects and sums rows of K; ternary V turns (Q K^T) V into signed accumulation: no real x
real multiply anywhere. The output neuron is read as a binary LIF with V_th 0.5 (the conservative
reading; the paper's text is not available).
`causal=True` (language models): the linear-time causal product of `CausalLinearProduct`, with a learned
per-head decay and a per-head LayerNorm (`decay`, `head_norm`; as in SSA).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from ..neurons.registry import create_neuron
from .base import SpikingAttention, causal_or_free, check_flag, register_attention

__all__ = ["A2OS2A"]


@register_attention("a2os2a")
class A2OS2A(SpikingAttention):
    """Args: ternary_opts (options of the V neuron), attn_threshold (output neuron), order of the product,
    causal (token n sees tokens <= n only), decay and head_norm (causal only, as in SSA)."""

    domains = {"q": "binary", "k": "real", "v": "ternary"}
    supports_causal = True

    def __init__(self, dim: int, num_heads: int, *, neuron: str = "lif", neuron_opts: Optional[Dict[str, Any]] = None,
                 qkv_bias: bool = True, out_neuron: bool = True, norm: str = "batch", ternary_opts: Optional[Dict[str, Any]] = None, attn_threshold: float = 0.5,
                 order: str = "auto", causal: bool = False, decay: bool = True, head_norm: bool = True):
        super().__init__(dim, num_heads, neuron=neuron, neuron_opts=neuron_opts, qkv_bias=qkv_bias, out_neuron=out_neuron,
                         norm=norm)
        self.q, self.k, self.v = (self.linear_norm(dim, dim, qkv_bias) for _ in range(3))
        self.q_neuron = self.make_neuron()
        self.k_neuron = create_neuron("relu")
        self.v_neuron = create_neuron("ternary", **(ternary_opts or {}))
        self.causal = check_flag("A2OS2A", "causal", causal)
        self.product = causal_or_free(1.0, order, causal, "A2OS2A", num_heads, dim // num_heads,
                                      check_flag("A2OS2A", "decay", decay), check_flag("A2OS2A", "head_norm", head_norm))
        self.attn_neuron = self.make_neuron(v_threshold=attn_threshold)
