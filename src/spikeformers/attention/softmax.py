"""Softmax attention: the ANN reference (ANN twins, and the A_softmax ablation inside an SNN).

    Q, K, V = BN(X W_Q), BN(X W_K), BN(X W_V)       real
    out     = SN(BN(Linear(softmax(Q K^T / sqrt(d)) V)))
Same parameter layout as SSA, so a twin differs only in neurons and attention. `causal=True` masks
future tokens (fused SDPA with is_causal).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from torch import Tensor

from .base import SoftmaxProduct, SpikingAttention, check_flag, register_attention, split_heads

__all__ = ["SoftmaxAttention"]


@register_attention("softmax")
class SoftmaxAttention(SpikingAttention):
    """Args: causal (token n attends to tokens <= n only)."""

    domains = {"q": "real", "k": "real", "v": "real"}
    supports_causal = True

    def __init__(self, dim: int, num_heads: int, *, neuron: str = "lif", neuron_opts: Optional[Dict[str, Any]] = None,
                 qkv_bias: bool = True, out_neuron: bool = True, norm: str = "batch", causal: bool = False):
        super().__init__(dim, num_heads, neuron=neuron, neuron_opts=neuron_opts, qkv_bias=qkv_bias, out_neuron=out_neuron,
                         norm=norm)
        self.q, self.k, self.v = (self.linear_norm(dim, dim, qkv_bias) for _ in range(3))
        self.causal = check_flag("SoftmaxAttention", "causal", causal)
        self.product = SoftmaxProduct(causal=causal)

    def project(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        h = self.num_heads
        return split_heads(self.q(x), h), split_heads(self.k(x), h), split_heads(self.v(x), h)

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        return self.product(q, k, v)
