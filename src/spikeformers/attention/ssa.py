"""Spiking Self-Attention (SSA), Spikformer (Zhou et al., ICLR 2023, arXiv 2209.15425).

    Q, K, V = SN(BN(X W_Q)), SN(BN(X W_K)), SN(BN(X W_V))     binary {0, 1}
    SSA'    = SN_{V_th=0.5}(Q K^T V * s),  s = 0.125
    SSA     = SN(BN(Linear(SSA')))
`causal=True` (language models): y_n = SN(LN_h(sum_{i<=n} gamma_h^(n-i) (q_n . k_i) v_i)), linear in N and
computed chunk-wise (`CausalLinearProduct`); `decay=False` drops the learned per-head forgetting gamma_h,
`head_norm=False` the per-head LayerNorm that replaces the fixed scale (a causal sum grows with n).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from .base import SpikingAttention, causal_or_free, check_flag, register_attention

__all__ = ["SSA"]


@register_attention("ssa")
class SSA(SpikingAttention):
    """Args: scale (0.125; 0.25 for DVS), attn_threshold (0.5 in every official repo), order of the product
    ("auto" | "qk_v" | "q_kv"; must stay "auto" with causal), causal (token n sees tokens <= n only),
    decay and head_norm (the causal form's forgetting and per-head norm; see the module docstring)."""

    domains = {"q": "binary", "k": "binary", "v": "binary"}
    supports_causal = True

    def __init__(self, dim: int, num_heads: int, *, neuron: str = "lif", neuron_opts: Optional[Dict[str, Any]] = None,
                 qkv_bias: bool = True, out_neuron: bool = True, norm: str = "batch", scale: float = 0.125, attn_threshold: float = 0.5, order: str = "auto",
                 causal: bool = False, decay: bool = True, head_norm: bool = True):
        super().__init__(dim, num_heads, neuron=neuron, neuron_opts=neuron_opts, qkv_bias=qkv_bias, out_neuron=out_neuron,
                         norm=norm)
        self.q, self.k, self.v = (self.linear_norm(dim, dim, qkv_bias) for _ in range(3))
        self.q_neuron, self.k_neuron, self.v_neuron = (self.make_neuron() for _ in range(3))
        self.causal = check_flag("SSA", "causal", causal)
        self.product = causal_or_free(scale, order, causal, "SSA", num_heads, dim // num_heads,
                                      check_flag("SSA", "decay", decay), check_flag("SSA", "head_norm", head_norm))
        self.attn_neuron = self.make_neuron(v_threshold=attn_threshold)
