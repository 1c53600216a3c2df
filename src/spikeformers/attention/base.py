"""The interface every attention variant shares, the product that picks its order, and the registry.

    attn = create_attention("ssa", dim=384, num_heads=12, neuron="lif")
    y = attn(x)              # [T, B, N, D] -> [T, B, N, D]
    q, k, v = attn.project(x)  # each [T, B, H, N, d], with the value domain the design specifies

Without softmax, (Q K^T) V == Q (K^T V): `AttentionProduct` computes the cheaper order for the shape
(2 N^2 d vs 2 N d^2 multiply-accumulates per head) and `order_for` tells the energy counter which ran.
`CausalLinearProduct` (`causal.py`) is its causal form (a running, optionally decayed K^T V over
tokens, computed chunk-wise), `AxisSum` an explicit sum over
one axis and `Hadamard` an element-wise product: every operation on attention operands runs inside a
module, so an energy counter's forward hooks see each operand.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._registry import Registry, check_options
from ..layers.bn_fire import fire
from ..layers.hadamard import Hadamard
from ..layers.norm import NORMS, create_linear_norm
from ..neurons.base import is_binary, mark_binary
from ..neurons.registry import neuron_factory
from .causal import CausalLinearProduct
from .fused_product import fused_applies, fused_q_kv

__all__ = [
    "SpikingAttention", "AttentionProduct", "CausalLinearProduct", "AxisSum", "Hadamard", "SoftmaxProduct", "ATTENTIONS",
    "register_attention", "create_attention", "list_attentions", "split_heads", "merge_heads", "unused_parameter_names",
    "check_flag", "causal_or_free",
]

ATTENTIONS = Registry("attention")
register_attention = ATTENTIONS.register


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """[T, B, N, D] -> [T, B, H, N, D/H]"""
    T, B, N, D = x.shape
    y = x.view(T, B, N, num_heads, D // num_heads).transpose(2, 3)
    return mark_binary(y) if is_binary(x) else y  # still spikes


def merge_heads(x: Tensor) -> Tensor:
    """[T, B, H, N, d] -> [T, B, N, H*d]"""
    T, B, H, N, d = x.shape
    y = x.transpose(2, 3).reshape(T, B, N, H * d)
    return mark_binary(y) if is_binary(x) else y  # still spikes


class AttentionProduct(nn.Module):
    """scale * Q K^T V without softmax, in whichever order costs fewer operations.

    Stateless: `order_for(q_shape)` returns the order `forward` uses for that shape ("qk_v" or "q_kv"),
    so counting never depends on side effects. `order` fixes it ("auto" by default). On CUDA the "q_kv"
    order runs as two Triton kernels on the operands' own strides (`fused_product.py`: no copies of the
    head-split views); `backend="torch"` keeps torch's matmuls, "triton" forces the kernels.
    """

    ORDERS = ("auto", "qk_v", "q_kv")
    BACKENDS = ("auto", "torch", "triton")

    def __init__(self, scale: float = 1.0, order: str = "auto", backend: str = "auto"):
        super().__init__()
        if order not in self.ORDERS:
            raise ValueError(f"unknown product order {order!r}; valid: {', '.join(self.ORDERS)}")
        if backend not in self.BACKENDS:
            raise ValueError(f"unknown product backend {backend!r}; valid: {', '.join(self.BACKENDS)}")
        self.scale = float(scale)
        self.order = order
        self.backend = backend

    def order_for(self, q_shape) -> str:
        if self.order != "auto":
            return self.order
        N, d = q_shape[-2], q_shape[-1]
        return "q_kv" if d < N else "qk_v"  # N d^2 < N^2 d  <=>  d < N

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        if self.order_for(q.shape) == "q_kv":
            if fused_applies(self.backend, q, k, v):
                return fused_q_kv(q, k, v, self.scale)
            y = q @ (k.transpose(-2, -1) @ v)  # [.., N, d] @ [.., d, d]
        else:
            y = (q @ k.transpose(-2, -1)) @ v  # [.., N, N] @ [.., N, d]
        return y * self.scale if self.scale != 1.0 else y

    def extra_repr(self) -> str:
        return f"scale={self.scale}, order={self.order!r}, backend={self.backend!r}"


class AxisSum(nn.Module):
    """Sum over one axis, kept as size 1 (`cumulative=True`: running sum, same shape), as a module so
    the energy counter sees the additions (SDSA's column sum over tokens, QKFormer's sums, expert mixing)."""

    def __init__(self, dim: int, cumulative: bool = False):
        super().__init__()
        self.dim, self.cumulative = int(dim), bool(cumulative)

    def forward(self, x: Tensor) -> Tensor:
        return x.cumsum(self.dim) if self.cumulative else x.sum(self.dim, keepdim=True)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, cumulative={self.cumulative}"


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
        norm: what follows every Linear: "batch" (BatchNorm, the papers' choice), or "layer" / "rms"
            (per token, never across tokens: for causal language models).
    """

    #: value domain of q, k, v as returned by `project` (read by tests and the energy counter)
    domains: Dict[str, str] = {}
    #: True where a `causal=True` option makes token n depend on tokens <= n only
    supports_causal: bool = False
    #: parameters (names relative to this module) kept for checkpoint parity but unused in forward
    unused_parameters: Tuple[str, ...] = ()

    def __init__(self, dim: int, num_heads: int, *, neuron: str = "lif", neuron_opts: Optional[Dict[str, Any]] = None,
                 qkv_bias: bool = True, out_neuron: bool = True, norm: str = "batch"):
        super().__init__()
        if dim <= 0 or num_heads <= 0 or dim % num_heads:
            raise ValueError(f"{type(self).__name__}: dim {dim} must be a positive multiple of num_heads {num_heads}")
        self.dim, self.num_heads = dim, num_heads
        self.make_neuron: Callable[..., nn.Module] = neuron_factory(neuron, **(neuron_opts or {}))
        self.qkv_bias = qkv_bias
        if norm not in NORMS:
            raise ValueError(f"{type(self).__name__}: unknown norm {norm!r}; valid norms: {', '.join(NORMS)}")
        self.norm = norm
        self.proj = self.linear_norm(dim, dim, norm == "batch")  # a bias before a per-token norm would cancel
        self.proj_neuron = self.make_neuron() if out_neuron else nn.Identity()

    def linear_norm(self, in_features: int, out_features: int, bias: bool) -> nn.Module:
        """Linear + this attention's norm (`norm`): BatchNorm in the vision backbones, a per-token
        LayerNorm/RMSNorm in causal language models."""
        return create_linear_norm(self.norm, in_features, out_features, bias)

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[-1] != self.dim:
            raise ValueError(
                f"{type(self).__name__} expects tokens [T, B, N, {self.dim}], got shape {tuple(x.shape)}"
            )

    def project(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Default: Q, K, V = neuron(BN(Linear(x))) per head, from `q`/`k`/`v` and `*_neuron` (SSA,
        A2OS2A and bipolar differ only in those neurons)."""
        h = self.num_heads
        return (split_heads(fire(self.q, self.q_neuron, x), h), split_heads(fire(self.k, self.k_neuron, x), h),
                split_heads(fire(self.v, self.v_neuron, x), h))

    def attend(self, *qkv: Tensor) -> Tensor:
        """Default: the spiking output of `product(q, k, v)` through `attn_neuron`."""
        return self.attn_neuron(self.product(*qkv))

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        y = merge_heads(self.attend(*self.project(x)))
        return fire(self.proj, self.proj_neuron, y)


def unused_parameter_names(model: nn.Module) -> Set[str]:
    """Full names of the parameters that modules of `model` declare unused in forward (their
    `unused_parameters` attribute), e.g. SDT's talking-heads conv: skip them in gradient checks."""
    names: Set[str] = set()
    for prefix, mod in model.named_modules():
        for p in getattr(mod, "unused_parameters", ()):
            names.add(f"{prefix}.{p}" if prefix else p)
    return names


def check_flag(who: str, name: str, value: Any) -> bool:
    """Validate a boolean option (a string "False" silently meaning True is the bug this catches)."""
    if not isinstance(value, bool):
        raise ValueError(f"{who}: {name} must be True or False, got {value!r}")
    return value


def causal_or_free(scale: float, order: str, causal: bool, who: str, num_heads: int = 1, head_dim: int = 1,
                   decay: bool = False, head_norm: bool = False) -> nn.Module:
    """The softmax-free product: `AttentionProduct(scale, order)`, or its causal linear form (with a
    learned per-head decay and a per-head norm where asked)."""
    if causal:
        if order != "auto":
            raise ValueError(f"{who}: order {order!r} cannot be combined with causal=True (the causal form is 'causal_q_kv')")
        return CausalLinearProduct(scale, num_heads, head_dim, decay=decay, normalize=head_norm)
    return AttentionProduct(scale, order)


def create_attention(name: str, dim: int, num_heads: int, **opts: Any) -> SpikingAttention:
    """Build an attention variant by registry name; unknown options raise ValueError listing valid ones."""
    cls = ATTENTIONS.get(name)
    check_options(f"attention {name!r}", cls, opts, exclude=("dim", "num_heads"))
    return cls(dim, num_heads, **opts)


def list_attentions(pattern: str = "*") -> List[str]:
    return ATTENTIONS.names(pattern)
