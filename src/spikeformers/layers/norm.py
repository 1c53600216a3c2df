"""Normalisation that never mixes tokens, for causal models, and Linear + norm as one layer.

BatchNorm in training mode pools statistics over every position of a batch, so in a language model
the future tokens of a sequence shift the normalisation of its past ones. `LayerNorm`/`RMSNorm` over
the feature axis normalise each (time step, sample, token) on its own, in training as in evaluation.

    create_norm("layer", dim)                 # nn.LayerNorm(dim) | nn.RMSNorm(dim) ("rms")
    create_linear_norm("batch", 384, 384)     # LinearBN (the vision backbones' Linear + BatchNorm1d)
    create_linear_norm("layer", 384, 384)     # LinearNorm: Linear + LayerNorm over features
"""
from __future__ import annotations

from torch import Tensor, nn

from .time import LinearBN

__all__ = ["NORMS", "TOKEN_NORMS", "create_norm", "LinearNorm", "create_linear_norm"]

#: every norm a Linear may be followed by; TOKEN_NORMS never see other tokens
NORMS = ("batch", "layer", "rms")
TOKEN_NORMS = ("layer", "rms")


def create_norm(kind: str, dim: int) -> nn.Module:
    """A per-position normalisation over the last axis: "layer" (LayerNorm) or "rms" (RMSNorm)."""
    if kind == "layer":
        return nn.LayerNorm(dim)
    if kind == "rms":
        return nn.RMSNorm(dim)
    raise ValueError(f"unknown per-token norm {kind!r}; valid: {', '.join(TOKEN_NORMS)}")


class LinearNorm(nn.Module):
    """Linear + a per-token norm over the output features, on any [..., in] tensor."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False, norm: str = "layer"):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.norm = create_norm(norm, out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.linear(x))


def create_linear_norm(norm: str, in_features: int, out_features: int, bias: bool = True) -> nn.Module:
    """`LinearBN` for norm "batch" (same parameter names as before), else `LinearNorm`."""
    if norm == "batch":
        return LinearBN(in_features, out_features, bias)
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; valid norms: {', '.join(NORMS)}")
    return LinearNorm(in_features, out_features, bias, norm)
