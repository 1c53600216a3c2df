"""Neurons whose output is not a plain {0,1} spike: ternary spikes and non-spiking units.

Ternary neuron: the Ternary-Spike reference (Guo et al., AAAI 2024, yfguo91/Ternary-Spike), also
the V path of A2OS2A (REFERENCES.md section 1):
    u[t] = decay * u[t-1] + x[t]                 (decay 0.25)
    s[t] = sign(u[t]) if |u[t]| >= 0.5 V_th else 0
    u[t] = u[t] (1 - |s[t]|)                     (hard reset to 0 on either polarity)
    backward: straight-through with the gradient of clamp(u / V_th, -1, 1)
An optional amplitude a multiplies s (learnable in the paper; it folds into the next layer's weights
at inference, so the output domain stays ternary).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from .base import BACKENDS, Neuron, _positive

__all__ = ["TernaryNode", "ReLUNode", "IdentityNode"]


class _TernaryFire(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z: Tensor) -> Tensor:
        ctx.save_for_backward(z)
        return torch.sign(z) * (z.abs() >= 0.5).to(z.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (z,) = ctx.saved_tensors
        return grad * (z.abs() <= 1).to(grad.dtype)


class TernaryNode(Neuron):
    """Ternary spiking neuron with output in {-a, 0, +a} (a = 1 unless an amplitude is set).

    Args:
        v_threshold: V_th; fires when |u| >= 0.5 V_th.
        decay: membrane decay per step (0.25 in the reference code).
        amplitude: initial spike amplitude a.
        learnable_amplitude: make a a trainable scalar.
        detach_reset: stop the gradient through the reset path.
        backend: "auto" | "torch" | "triton".
    """

    domain = "ternary"

    def __init__(
        self,
        *,
        v_threshold: float = 1.0,
        decay: float = 0.25,
        amplitude: float = 1.0,
        learnable_amplitude: bool = False,
        detach_reset: bool = True,
        backend: str = "auto",
    ):
        super().__init__()
        who = type(self).__name__
        self.v_threshold = _positive("v_threshold", v_threshold, who)
        decay = float(decay)
        if not (0.0 <= decay < 1.0):
            raise ValueError(f"{who}: decay must be in [0, 1), got {decay}")
        self.decay = decay
        amplitude = _positive("amplitude", amplitude, who)
        if learnable_amplitude:
            self.amplitude = nn.Parameter(torch.tensor(amplitude))
        else:
            self.register_buffer("amplitude", torch.tensor(amplitude), persistent=False)
        self.detach_reset = bool(detach_reset)
        if backend not in BACKENDS:
            raise ValueError(f"{who}: unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
        self.backend = backend

    def step(self, x: Tensor, state: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        u = x if state is None else self.decay * state + x
        s = _TernaryFire.apply(u / self.v_threshold)
        m = s.abs()
        u = u * (1 - (m.detach() if self.detach_reset else m))
        return s * self.amplitude.to(s.dtype), u

    def _fused(self, x: Tensor) -> Optional[Tensor]:
        if self.backend == "torch":
            return None
        from .kernels import dispatch

        return dispatch(self, x)

    def extra_repr(self) -> str:
        return f"v_threshold={self.v_threshold}, decay={self.decay}, backend={self.backend!r}"


class ReLUNode(Neuron):
    """Non-spiking ReLU: real, non-negative output (A2OS2A's K path; the ANN twin's activation)."""

    domain = "real"

    def step(self, x: Tensor, state=None):
        return torch.relu(x), None

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x)


class IdentityNode(Neuron):
    """Pass-through (real output): for ablations and projections that keep analog values."""

    domain = "real"

    def step(self, x: Tensor, state=None):
        return x, None

    def forward(self, x: Tensor) -> Tensor:
        return x
