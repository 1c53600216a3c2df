"""The interface every attention variant shares, the product that picks its order, and the registry.

    attn = create_attention("ssa", dim=384, num_heads=12, neuron="lif")
    y = attn(x)              # [T, B, N, D] -> [T, B, N, D]
    q, k, v = attn.project(x)  # each [T, B, H, N, d], with the value domain the design specifies

Without softmax, (Q K^T) V == Q (K^T V): `AttentionProduct` computes the cheaper order for the shape
(2 N^2 d vs 2 N d^2 multiply-accumulates per head) and `order_for` tells the energy counter which ran.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._registry import Registry, check_options
from ..layers.time import LinearBN
from ..neurons.registry import neuron_factory

__all__ = [
    "SpikingAttention", "AttentionProduct", "Hadamard", "SoftmaxProduct", "ATTENTIONS", "register_attention", "create_attention",
    "list_attentions", "split_heads", "merge_heads",
]

ATTENTIONS = Registry("attention")
register_attention = ATTENTIONS.register


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """[T, B, N, D] -> [T, B, H, N, D/H]"""
    T, B, N, D = x.shape
    return x.view(T, B, N, num_heads, D // num_heads).transpose(2, 3)


def merge_heads(x: Tensor) -> Tensor:
    """[T, B, H, N, d] -> [T, B, N, H*d]"""
    T, B, H, N, d = x.shape
    return x.transpose(2, 3).reshape(T, B, N, H * d)


class AttentionProduct(nn.Module):
    """scale * Q K^T V without softmax, in whichever order costs fewer operations.

    Stateless: `order_for(q_shape)` returns the order `forward` uses for that shape ("qk_v" or "q_kv"),
    so counting never depends on side effects. `order` fixes it ("auto" by default).
    """

    ORDERS = ("auto", "qk_v", "q_kv")

    def __init__(self, scale: float = 1.0, order: str = "auto"):
        super().__init__()
        if order not in self.ORDERS:
            raise ValueError(f"unknown product order {order!r}; valid: {', '.join(self.ORDERS)}")
        self.scale = float(scale)
        self.order = order

    def order_for(self, q_shape) -> str:
        if self.order != "auto":
            return self.order
        N, d = q_shape[-2], q_shape[-1]
        return "q_kv" if d < N else "qk_v"  # N d^2 < N^2 d  <=>  d < N

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        if self.order_for(q.shape) == "q_kv":
            y = q @ (k.transpose(-2, -1) @ v)  # [.., N, d] @ [.., d, d]
        else:
            y = (q @ k.transpose(-2, -1)) @ v  # [.., N, N] @ [.., N, d]
        return y * self.scale if self.scale != 1.0 else y

    def extra_repr(self) -> str:
        return f"scale={self.scale}, order={self.order!r}"


class Hadamard(nn.Module):
    """Element-wise product `a * b` (broadcasting) as a module, so the energy counter's hooks see both
    operands (spike masks in SDSA, Q-K attention, expert routing)."""

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return a * b


class SoftmaxProduct(nn.Module):
    """softmax(Q K^T / sqrt(d)) V on [..., N, d] (fused SDPA), as a module for the energy counter."""

    def __init__(self, causal: bool = False):
        super().__init__()
        self.causal = causal

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        lead = q.shape[:-3]  # SDPA takes [batch, heads, N, d]
        y = F.scaled_dot_product_attention(q.flatten(0, len(lead) - 1), k.flatten(0, len(lead) - 1),
                                           v.flatten(0, len(lead) - 1), is_causal=self.causal)
        return y.unflatten(0, lead)


class SpikingAttention(nn.Module):
    """Base: shape checks, Q/K/V projections (Linear + BN + neuron) and the output projection.

    Subclasses choose the Q/K/V neurons and define `attend(q, k, v) -> [T, B, H, N, d]`.
    Args:
        dim, num_heads: model width and heads (dim % num_heads == 0).
        neuron: neuron registry name for the binary spiking paths; neuron_opts: its options.
        qkv_bias: bias in the Q/K/V Linear (True in Spikformer's CIFAR code, False on ImageNet).
        out_neuron: end with a neuron after the output Linear+BN (Spikformer); False for membrane-shortcut
            backbones (SDT, A2OS2A), whose branches add real membrane potentials to the residual.
    """

    #: value domain of q, k, v as returned by `project` (read by tests and the energy counter)
    domains: Dict[str, str] = {}

    def __init__(self, dim: int, num_heads: int, *, neuron: str = "lif", neuron_opts: Optional[Dict[str, Any]] = None,
                 qkv_bias: bool = True, out_neuron: bool = True):
        super().__init__()
        if dim <= 0 or num_heads <= 0 or dim % num_heads:
            raise ValueError(f"{type(self).__name__}: dim {dim} must be a positive multiple of num_heads {num_heads}")
        self.dim, self.num_heads = dim, num_heads
        self.make_neuron: Callable[..., nn.Module] = neuron_factory(neuron, **(neuron_opts or {}))
        self.qkv_bias = qkv_bias
        self.proj = LinearBN(dim, dim, bias=True)
        self.proj_neuron = self.make_neuron() if out_neuron else nn.Identity()

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[-1] != self.dim:
            raise ValueError(
                f"{type(self).__name__} expects tokens [T, B, N, {self.dim}], got shape {tuple(x.shape)}"
            )

    def project(self, x: Tensor) -> Tuple[Tensor, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def attend(self, *qkv: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        y = merge_heads(self.attend(*self.project(x)))
        return self.proj_neuron(self.proj(y))


def create_attention(name: str, dim: int, num_heads: int, **opts: Any) -> SpikingAttention:
    """Build an attention variant by registry name; unknown options raise ValueError listing valid ones."""
    cls = ATTENTIONS.get(name)
    check_options(f"attention {name!r}", cls, opts, exclude=("dim", "num_heads"))
    return cls(dim, num_heads, **opts)


def list_attentions(pattern: str = "*") -> List[str]:
    return ATTENTIONS.names(pattern)
