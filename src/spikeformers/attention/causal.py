"""Causal softmax-free attention in linear time, computed chunk by chunk: the form of SSA and A2OS2A
in language models.

    y_n = scale * sum_{i <= n} gamma_h^(n - i) (q_n . k_i) v_i          per head h, time step and sample

With `decay` each head forgets at its own rate gamma_h = sigmoid(w_h), learned, initialised from a
half-life of about one token to one of about 180 (a leaky integrator over tokens, as a LIF membrane
over time steps); without it gamma = 1 (a plain running sum). `normalize` then applies a LayerNorm over
each head's channels, per position, because the size of a causal sum grows with n and with the
head's memory, so no fixed scale suits every position (as RetNet's group norm; it never mixes tokens).

Training computes the chunk-wise form: inside a chunk of C tokens the masked, decayed C x C scores
(Q K^T * D) V; across chunks one state K^T V [d, d_v] per chunk, carried forward by a [M, M] decay
matrix. No N x N tensor (for N > C) and no per-position d x d state is formed. Generation uses the
recurrent form `step`: S = gamma S + k^T v, y = q S, with the same result (tested).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CausalLinearProduct", "causal_chunked", "decay_init"]


def decay_init(num_heads: int) -> Tensor:
    """Logits w_h with gamma_h = sigmoid(w_h) = 1 - 2^-(1 + 6.5 h / (H - 1)): half-lives of 1 to ~180 tokens."""
    e = torch.linspace(1.0, 7.5, num_heads) if num_heads > 1 else torch.tensor([4.0])
    gamma = 1.0 - 2.0 ** -e
    return torch.log(gamma / (1 - gamma))


def causal_chunked(q: Tensor, k: Tensor, v: Tensor, log_gamma: Optional[Tensor], chunk: int) -> Tensor:
    """sum_{i <= n} gamma^(n - i) (q_n . k_i) v_i for q, k `[..., H, N, d]`, v `[..., H, N, d_v]`;
    `log_gamma [H]` (<= 0) or None (gamma = 1)."""
    N = q.shape[-2]
    C = min(chunk, N)
    pad = (-N) % C
    if pad:  # zeros at the end change nothing before them
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
    M = (N + pad) // C
    qc, kc, vc = (t.unflatten(-2, (M, C)) for t in (q, k, v))  # [..., H, M, C, d]
    i = torch.arange(C, device=q.device)
    wt = torch.promote_types(q.dtype, torch.float32)  # weights in at least fp32, cast to q's dtype
    rel = (i[:, None] - i[None, :]).to(wt)  # [C, C]: n - i inside a chunk
    blocks = torch.arange(M, device=q.device).to(wt)
    lag = blocks[:, None] - 1 - blocks[None, :]  # [M, M]: chunks between the source chunk and the one before m
    lg = torch.zeros(1, device=q.device, dtype=wt) if log_gamma is None else log_gamma.to(wt).clamp(max=0.0)
    lg = lg[:, None, None]  # [H, 1, 1] (H = 1 without decay)
    intra = torch.exp(lg * rel.clamp_min(0)) * (rel >= 0)  # [H, C, C]
    carry = torch.exp(lg * C * lag.clamp_min(0)) * (lag >= 0)  # [H, M, M]
    to_end = torch.exp(lg * (C - 1 - i)[:, None])  # [H, C, 1]: k_j's weight in its chunk's end state
    from_start = torch.exp(lg * (i + 1)[:, None])  # [H, C, 1]: the carried state's weight at position i
    dt = q.dtype
    y = ((qc @ kc.transpose(-2, -1)) * intra[:, None].to(dt)) @ vc  # [..., H, M, C, d_v]
    ends = (kc * to_end[:, None].to(dt)).transpose(-2, -1) @ vc  # [..., H, M, d, d_v] per chunk alone
    states = torch.einsum("hmn,...hnde->...hmde", carry.to(dt), ends)  # entering each chunk
    y = y + (qc * from_start[:, None].to(dt)) @ states
    return y.flatten(-3, -2)[..., :N, :]


class CausalLinearProduct(nn.Module):
    """Causal `scale * Q K^T V` without softmax, chunk-wise (see the module docstring).

    Args:
        scale: multiplies the product (folds into the next threshold; irrelevant with `normalize`).
        num_heads, head_dim: needed with `decay` (one rate per head) and `normalize` (affine per channel).
        decay: learned per-head forgetting (False: a plain running sum).
        normalize: LayerNorm over each head's channels of the product, per position.
        chunk: tokens per chunk in training.
    `order_for` returns "causal_q_kv" for every shape (the energy counter charges the recurrent form).
    """

    def __init__(self, scale: float = 1.0, num_heads: Optional[int] = None, head_dim: Optional[int] = None,
                 decay: bool = False, normalize: bool = False, chunk: int = 32):
        super().__init__()
        if (decay or normalize) and (num_heads is None or head_dim is None):
            raise ValueError("CausalLinearProduct: decay and normalize need num_heads and head_dim")
        if chunk < 1:
            raise ValueError(f"CausalLinearProduct: chunk must be >= 1, got {chunk}")
        self.scale, self.chunk = float(scale), int(chunk)
        self.decay_logit = nn.Parameter(decay_init(num_heads)) if decay else None
        if normalize:
            self.norm_weight = nn.Parameter(torch.ones(num_heads, 1, head_dim))
            self.norm_bias = nn.Parameter(torch.zeros(num_heads, 1, head_dim))
        else:
            self.norm_weight = self.norm_bias = None

    @property
    def normalize(self) -> bool:
        return self.norm_weight is not None

    def log_gamma(self) -> Optional[Tensor]:
        return None if self.decay_logit is None else F.logsigmoid(self.decay_logit)

    def order_for(self, q_shape) -> str:
        return "causal_q_kv"

    def _finish(self, y: Tensor) -> Tensor:
        if self.scale != 1.0:
            y = y * self.scale
        if self.normalize:  # [..., H, N, d_v]: each head's channels
            y = F.layer_norm(y, y.shape[-1:]) * self.norm_weight.to(y.dtype) + self.norm_bias.to(y.dtype)
        return y

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        return self._finish(causal_chunked(q, k, v, self.log_gamma(), self.chunk))

    def step(self, q: Tensor, k: Tensor, v: Tensor, state: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """One token: q, k `[..., H, 1, d]`, v `[..., H, 1, d_v]`; state: the running K^T V `[..., H, d, d_v]`."""
        kv = k.transpose(-2, -1) @ v
        if state is not None:
            lg = self.log_gamma()
            state = state * lg.exp().to(state.dtype)[:, None, None] if lg is not None else state
            kv = state + kv
        return self._finish(q @ kv), kv

    def extra_repr(self) -> str:
        return (f"scale={self.scale}, decay={self.decay_logit is not None}, normalize={self.normalize}, "
                f"chunk={self.chunk}")
