"""Spike-Driven Self-Attention (SDSA), Spike-driven Transformer (Yao et al., NeurIPS 2023,
arXiv 2307.01694; code BICLab/Spike-Driven-Transformer, module/ms_conv.py).

    Q, K, V = SN(BN(X W_Q)), SN(BN(X W_K)), SN(BN(X W_V))     binary {0, 1}, no bias
    KV      = K (.) V                                          Hadamard: a mask, no multiply
    kv      = sum over tokens of KV                            [T, B, H, 1, d] column sums per head
    out     = Q (.) SN_{V_th=0.5}(kv)                          Hadamard, broadcast over tokens
    SDSA    = BN(Linear(out)) (+ SN unless out_neuron=False)
Linear in N and in D: no N x N tensor is ever formed. The leading LIF of the official block (the
"shortcut" neuron that turns the membrane residual into spikes) belongs to the backbone's block.
`causal=True`: the column sum becomes a running sum over tokens, so token n sees tokens <= n only.
`erode=True`: the official code's DVS variant ("dvs_mode", its `Erode`: MaxPool3d of kernel (1, 3, 3),
stride 1, padding 1). It max-pools K and V over the 3 x 3 neighbourhood of the (square) token grid,
per channel, and, as that code does on the head-split tensors [T, B, H, N, d], K (.) V and the output
over 3 x 3 windows of (token index, channel within the head).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import math

import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.bn_fire import fire
from .base import AxisSum, Hadamard, SpikingAttention, check_flag, register_attention, split_heads

__all__ = ["SDSA", "Erode"]


class Erode(nn.Module):
    """The official SDT's 3 x 3 max-pool (stride 1, padding 1), on the two layouts it meets."""

    def grid(self, x: Tensor) -> Tensor:
        """[T, B, N, D] tokens of a square H x W grid: pooled over the grid, per channel."""
        T, B, N, D = x.shape
        side = math.isqrt(N)
        if side * side != N:
            raise ValueError(f"SDSA erode needs a square token grid, got {N} tokens")
        y = F.max_pool2d(x.transpose(2, 3).reshape(T * B, D, side, side), 3, 1, 1)
        return y.reshape(T, B, D, N).transpose(2, 3)

    def last2(self, x: Tensor) -> Tensor:
        """[..., N, d]: pooled over 3 x 3 windows of the last two axes."""
        return F.max_pool2d(x.reshape(-1, 1, *x.shape[-2:]), 3, 1, 1).reshape(x.shape)


@register_attention("sdsa")
class SDSA(SpikingAttention):
    """Args:
        attn_threshold: threshold of the neuron on the column sums (0.5, `talking_heads_lif` in the code).
        talking_heads: register the official code's Conv1d(h, h, 1, bias=False) so parameter counts
            and checkpoints match the published models (h^2 parameters). It is unused in forward, as in
            the official code: declared in `unused_parameters` and created with requires_grad=False so
            optimizers and DDP skip it.
        causal: running sum over tokens instead of the full column sum.
        erode: the official DVS variant's max-pools (see the module docstring); not with causal.
    """

    domains = {"q": "binary", "k": "binary", "v": "binary"}
    supports_causal = True

    def __init__(self, dim: int, num_heads: int, *, neuron: str = "lif", neuron_opts: Optional[Dict[str, Any]] = None,
                 qkv_bias: bool = False, out_neuron: bool = True, norm: str = "batch", attn_threshold: float = 0.5, talking_heads: bool = False,
                 causal: bool = False, erode: bool = False):
        super().__init__(dim, num_heads, neuron=neuron, neuron_opts=neuron_opts, qkv_bias=qkv_bias, out_neuron=out_neuron,
                         norm=norm)
        self.q, self.k, self.v = (self.linear_norm(dim, dim, qkv_bias) for _ in range(3))
        self.q_neuron, self.k_neuron, self.v_neuron = (self.make_neuron() for _ in range(3))
        self.kv_mask = Hadamard()  # K (.) V
        self.causal = check_flag("SDSA", "causal", causal)
        self.token_sum = AxisSum(dim=-2, cumulative=causal)  # over N: [.., N, d] -> [.., 1, d] (or running)
        self.kv_neuron = self.make_neuron(v_threshold=attn_threshold)
        self.q_mask = Hadamard()  # Q (.) SN(kv)
        self.erode = Erode() if check_flag("SDSA", "erode", erode) else None
        if self.erode is not None and causal:
            raise ValueError("SDSA: erode pools over neighbouring tokens, which a causal attention may not see")
        if check_flag("SDSA", "talking_heads", talking_heads):
            self.talking_heads = nn.Conv1d(num_heads, num_heads, 1, bias=False)
            self.talking_heads.weight.requires_grad_(False)
            self.unused_parameters = ("talking_heads.weight",)

    def project(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        h = self.num_heads
        q, k, v = fire(self.q, self.q_neuron, x), fire(self.k, self.k_neuron, x), fire(self.v, self.v_neuron, x)
        if self.erode is not None:
            k, v = self.erode.grid(k), self.erode.grid(v)
        return split_heads(q, h), split_heads(k, h), split_heads(v, h)

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        kv = self.kv_mask(k, v)
        if self.erode is not None:
            kv = self.erode.last2(kv)
        kv = self.token_sum(kv)  # [T, B, H, 1, d] (causal: [T, B, H, N, d])
        out = self.q_mask(q, self.kv_neuron(kv))
        return out if self.erode is None else self.erode.last2(out)
