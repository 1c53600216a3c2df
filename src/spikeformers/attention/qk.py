"""Q-K attention (no V), QKFormer (Zhou et al., NeurIPS 2024, arXiv 2403.16552; code
zhouchenlin2096/QKFormer).

    Q, K = SN(BN(X W_Q)), SN(BN(X W_K))                  binary {0, 1}, no bias
    token   (QKTA): A_t = SN_{0.5}(sum over the head's channels of Q)   [T, B, H, N, 1]  X' = A_t (.) K
    channel (QKCA): A_c = SN_{0.5}(sum over tokens of Q)                [T, B, H, 1, d]  X' = A_c (.) K
    out = SN(BN(Linear(X')))
Both are O(N D): sums and masks only. The released code uses the token form; the channel form is the
paper's alternative. `causal=True`: the token form is already per-token (a no-op); the channel form
uses a running sum over tokens.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from torch import Tensor

from ..layers.bn_fire import fire
from .base import AxisSum, Hadamard, SpikingAttention, check_flag, register_attention, split_heads

__all__ = ["QKAttention", "QKTokenAttention", "QKChannelAttention"]


class QKAttention(SpikingAttention):
    """Shared part: binary Q and K, a spiking mask from sums of Q, applied to K.

    Args: attn_threshold (0.5, the mask neuron), causal (see the module docstring).
    """

    domains = {"q": "binary", "k": "binary"}
    supports_causal = True
    #: axis of [T, B, H, N, d] that Q is summed over (-1: channels -> token mask; -2: tokens -> channel mask)
    sum_dim: int = -1

    def __init__(self, dim: int, num_heads: int, *, neuron: str = "lif", neuron_opts: Optional[Dict[str, Any]] = None,
                 qkv_bias: bool = False, out_neuron: bool = True, norm: str = "batch", attn_threshold: float = 0.5, causal: bool = False):
        super().__init__(dim, num_heads, neuron=neuron, neuron_opts=neuron_opts, qkv_bias=qkv_bias, out_neuron=out_neuron,
                         norm=norm)
        self.q, self.k = self.linear_norm(dim, dim, qkv_bias), self.linear_norm(dim, dim, qkv_bias)
        self.q_neuron, self.k_neuron = self.make_neuron(), self.make_neuron()
        self.causal = check_flag(type(self).__name__, "causal", causal)
        # a running sum only where the sum runs over tokens
        self.q_sum = AxisSum(self.sum_dim, cumulative=causal and self.sum_dim == -2)
        self.attn_neuron = self.make_neuron(v_threshold=attn_threshold)
        self.mask = Hadamard()

    def project(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        h = self.num_heads
        return split_heads(fire(self.q, self.q_neuron, x), h), split_heads(fire(self.k, self.k_neuron, x), h)

    def attend(self, q: Tensor, k: Tensor) -> Tensor:
        return self.mask(self.attn_neuron(self.q_sum(q)), k)


@register_attention("qk_token")
class QKTokenAttention(QKAttention):
    """QKTA: a binary mask over tokens, per head, from the row sums of Q."""

    sum_dim = -1


@register_attention("qk_channel")
class QKChannelAttention(QKAttention):
    """QKCA: a binary mask over channels, per head, from the column sums of Q."""

    sum_dim = -2
