"""Neurons whose output is not a plain {0,1} spike: ternary and bipolar spikes, non-spiking units.

Ternary neuron: the Ternary-Spike reference (Guo et al., AAAI 2024, yfguo91/Ternary-Spike), also
the V path of A2OS2A (Guo et al., CVPR 2025):
    u[t] = decay * u[t-1] + x[t]                 (decay 0.25)
    s[t] = sign(u[t]) if |u[t]| >= 0.5 V_th else 0
    u[t] = u[t] (1 - |s[t]|)                     (hard reset to 0 on either polarity)
    backward: straight-through with the gradient of clamp(u / V_th, -1, 1)
An optional amplitude a multiplies s (learnable in the paper; it folds into the next layer's weights
at inference, so the output domain stays ternary).

Integer neuron (SpikeYOLO's I-LIF, Luo et al., ECCV 2024; the integer-training mode of SDT-v3 and ASN):
    s[t] = round(clamp(x[t] / V_th, 0, D))       an integer spike count in {0..D}, per time step
    backward: the gradient of clamp (straight through the rounding)
Trained this way, a layer's integer output n is emitted at inference as n binary spikes over D virtual
time steps (`expand_to_spikes`), and every Linear that reads it gives the same result on those spikes:
integer training, spike-driven inference. The membrane starts at rest at every step (a one-step
I-LIF). The energy counter charges an integer n as n spike events.

Bipolar neuron (the signed Q/K spikes of Bipolar Self-attention, OpenReview nG45z7lJ7D): an LIF whose
membrane fires +1 at H >= V_th and -1 at H <= -V_th, resetting on either.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from .adaptive import integer_fire
from .base import BACKENDS, Neuron, _positive
from .lif import LIFNode

__all__ = ["TernaryNode", "BipolarNode", "IntegerNode", "ReLUNode", "IdentityNode"]


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
        detach_reset: stop the gradient through the reset path (False, as the Ternary Spike reference code:
            its reset u (1 - |s|) is differentiated).
        backend: "auto" | "torch" | "triton".
    """

    domain = "ternary"
    kernel_op = "neuron"

    def __init__(
        self,
        *,
        v_threshold: float = 1.0,
        decay: float = 0.25,
        amplitude: float = 1.0,
        learnable_amplitude: bool = False,
        detach_reset: bool = False,
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

    def _kernel(self, ops, x: Tensor) -> Optional[Tensor]:
        if type(self) is not TernaryNode:  # a subclass with other dynamics gets the reference
            return None
        return ops.ternary(x, self.amplitude, (self.decay, self.v_threshold, self.detach_reset))

    def extra_repr(self) -> str:
        return f"v_threshold={self.v_threshold}, decay={self.decay}, backend={self.backend!r}"


class BipolarNode(LIFNode):
    """Bipolar LIF with signed spikes in {-1, 0, +1}; LIF charge (options as `LIFNode`).

        S[t] = sign(H[t]) * Heaviside(|H[t]| - V_th)
        V[t] = H[t] (1 - |S[t]|) + V_reset |S[t]|     (hard reset on either polarity)
        V[t] = H[t] - S[t] V_th                       (soft reset, v_reset=None: towards zero)
    Backward: dS/dH = surrogate'(|H| - V_th) on both sides (sign(H)^2 = 1), so a negative membrane
    near -V_th learns as a positive one near +V_th does. No fused kernel (the reference loop runs).
    """

    domain = "ternary"

    def __init__(self, **kw):
        super().__init__(**kw)
        if self.v_reset is not None and self.v_reset <= -self.v_threshold:
            raise ValueError(f"BipolarNode: v_reset must lie in (-v_threshold, v_threshold), got {self.v_reset}")

    def fire(self, h: Tensor) -> Tensor:
        return torch.sign(h).detach() * self.surrogate(h.abs() - self.v_threshold)

    def reset(self, h: Tensor, s: Tensor) -> Tensor:
        s = s.detach() if self.detach_reset else s
        if self.v_reset is None:
            return h - s * self.v_threshold
        m = s.abs()
        return h * (1 - m) + self.v_reset * m

    def _fused(self, x: Tensor) -> Optional[Tensor]:
        if self.backend == "triton":
            raise RuntimeError("BipolarNode has no Triton kernel; use backend='torch' or 'auto'")
        return None


class IntegerNode(Neuron):
    """Integer-valued spiking neuron (I-LIF): output round(clamp(x / V_th, 0, D)) in {0..D}.

    Args:
        max_spikes: D, the largest spike count (virtual time steps at inference).
        v_threshold: V_th, the input worth one spike.
    """

    domain = "integer"

    def __init__(self, *, max_spikes: int = 4, v_threshold: float = 1.0):
        super().__init__()
        if not isinstance(max_spikes, int) or isinstance(max_spikes, bool) or max_spikes < 1:
            raise ValueError(f"IntegerNode: max_spikes must be a positive integer, got {max_spikes!r}")
        self.max_spikes = max_spikes
        self.v_threshold = _positive("v_threshold", v_threshold, "IntegerNode")

    def step(self, x: Tensor, state=None):
        return integer_fire(x if self.v_threshold == 1.0 else x / self.v_threshold, self.max_spikes), None

    def forward(self, x: Tensor) -> Tensor:  # stateless: every step at once
        return self.step(x)[0]

    def extra_repr(self) -> str:
        return f"max_spikes={self.max_spikes}, v_threshold={self.v_threshold}"


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
