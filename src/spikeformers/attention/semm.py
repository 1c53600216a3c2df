"""Experts-mixture spiking attention (EMSA) of SEMM, "Spiking Transformer with Experts Mixture"
(Zhou et al., NeurIPS 2024). No official code: the layout follows STEP's reimplementation
(Fancyssc/STEP cls/models/static/spikf_semm_cifar.py).

    K   = SN(BN(X W_K))        [T, B, N, d_e]   shared by all experts
    V   = SN(BN(X W_V))        [T, B, N, D]     shared
    Q_i = SN(BN(X W_Qi))       [T, B, N, d_e]   one query per expert i = 1..E
    R   = SN(BN(X W_R + b))    [T, B, N, E]     spiking router, no softmax, no top-k
    O_i = SN_i(Q_i K^T V * s)  [T, B, N, D]     s = 0.125
    Y   = sum_i R_i (.) O_i    the router spike of expert i gates its output token by token
    out = SN(BN(Linear(Y)))
Each expert plays the role of a head (queries of width d_e against the shared K, full-width V), so
`num_heads` is accepted for the common interface and unused. Defaults as STEP: E = 4, d_e = D / E
(96 at D = 384), Q/K/V bias from `qkv_bias`, router with bias, expert neurons at the backbone's
threshold (STEP uses 1.0, not the 0.5 of SSA; `attn_threshold` changes it).
Layout: all expert queries come from one Linear D -> E d_e (the same weights and operations as E
separate ones) and one neuron; with a learnable-tau neuron (PLIF) the experts therefore share tau.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from torch import Tensor

from ..layers.bn_fire import fire
from .base import AttentionProduct, AxisSum, Hadamard, SpikingAttention, register_attention, split_heads

__all__ = ["SEMM"]


def _positive_int(who: str, name: str, v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{who}: {name} must be a positive integer, got {v!r}")
    return v


@register_attention("semm")
class SEMM(SpikingAttention):
    """Args: num_experts (E, 4), expert_dim (d_e; None: dim // E), scale (0.125), attn_threshold (expert
    output neurons, 1.0 as STEP), order of the Q K^T V product ("auto" | "qk_v" | "q_kv").

    `project` returns (q [T, B, E, N, d_e], k [T, B, 1, N, d_e], v [T, B, 1, N, D], r [T, B, E, N, 1]).
    """

    domains = {"q": "binary", "k": "binary", "v": "binary", "r": "binary"}

    def __init__(self, dim: int, num_heads: int, *, neuron: str = "lif", neuron_opts: Optional[Dict[str, Any]] = None,
                 qkv_bias: bool = True, out_neuron: bool = True, norm: str = "batch", num_experts: int = 4, expert_dim: Optional[int] = None,
                 scale: float = 0.125, attn_threshold: float = 1.0, order: str = "auto"):
        super().__init__(dim, num_heads, neuron=neuron, neuron_opts=neuron_opts, qkv_bias=qkv_bias, out_neuron=out_neuron,
                         norm=norm)
        E = _positive_int("SEMM", "num_experts", num_experts)
        d_e = _positive_int("SEMM", "expert_dim", dim // E if expert_dim is None else expert_dim)
        self.num_experts, self.expert_dim = E, d_e
        self.q = self.linear_norm(dim, E * d_e, qkv_bias)  # the E expert queries, stacked
        self.k = self.linear_norm(dim, d_e, qkv_bias)
        self.v = self.linear_norm(dim, dim, qkv_bias)
        self.router = self.linear_norm(dim, E, bias=True)
        self.q_neuron, self.k_neuron, self.v_neuron, self.router_neuron = (self.make_neuron() for _ in range(4))
        self.product = AttentionProduct(scale, order)
        self.expert_neuron = self.make_neuron(v_threshold=attn_threshold)
        self.gate = Hadamard()  # R_i (.) O_i
        self.mix = AxisSum(dim=2)  # sum over experts

    def project(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        q = split_heads(fire(self.q, self.q_neuron, x), self.num_experts)  # [T, B, E, N, d_e]
        k = fire(self.k, self.k_neuron, x).unsqueeze(2)  # [T, B, 1, N, d_e]
        v = fire(self.v, self.v_neuron, x).unsqueeze(2)  # [T, B, 1, N, D]
        r = fire(self.router, self.router_neuron, x).transpose(2, 3).unsqueeze(-1)  # [T, B, N, E] -> [T, B, E, N, 1]
        return q, k, v, r

    def attend(self, q: Tensor, k: Tensor, v: Tensor, r: Tensor) -> Tensor:
        o = self.expert_neuron(self.product(q, k, v))  # [T, B, E, N, D]
        return self.mix(self.gate(r, o))  # [T, B, 1, N, D]
