"""Adaptive spiking neuron (ASN): a LIF whose threshold jumps at each spike and relaxes back, with
learnable membrane and adaptation time constants; plus the integer-training / spike-inference mode.

"Adaptive Spiking Neurons for Vision and Language Modeling" (Zhou et al., arXiv 2604.12365) is known
from its abstract only; the dynamics follow the sketch of the design notes this project started from,
dimensionless (rest 0, base threshold theta0 = v_threshold = 1):
    tau_m dv/dt = -v + x,    tau_a dtheta/dt = -(theta - theta0) + dtheta * S
discretised with dt = 1 (forward Euler, the LIF convention of this library), k = 1/tau:
    H[t]     = V[t-1] + k_m (X[t] - V[t-1])                     (= LIFNode with decay_input)
    S[t]     = Heaviside(H[t] - theta[t-1])                    (surrogate gradient)
    V[t]     = H[t] (1 - S[t]) + V_reset S[t]                  (hard reset; v_reset=None: H - S theta)
    theta[t] = theta0 + (1 - k_a)(theta[t-1] - theta0) + dtheta S[t]
Each spike raises the threshold by exactly `delta_theta` (S read as impulses of that weight), which
then relaxes to theta0 by a factor (1 - 1/tau_a) per step. With delta_theta = 0 this is `LIFNode`.
k_m = sigmoid(w_m), k_a = sigmoid(w_a) (as PLIF), so both time constants stay > 1 while learned;
`channels` gives one pair per channel of the last axis. The state is the tuple (v, theta).

mode="integer" (integer training, as SDT-v3's spike-firing approximation): the neuron emits
round(clamp(x, 0, D)) with D = `max_spikes` and a straight-through gradient (domain "integer").
`expand_to_spikes` turns such an activation into D virtual binary steps whose sum is the integer, so a
following linear layer gives the same result when run on the spikes (spike-driven inference).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
from torch import Tensor, nn

from .base import SpikingNeuron, _positive
from .surrogate import Surrogate

__all__ = ["ASNNode", "expand_to_spikes", "integer_fire"]

MODES = ("spike", "integer")


class _IntegerFire(torch.autograd.Function):
    """round(clamp(x, 0, D)); backward: the gradient of clamp (straight through the rounding)."""

    @staticmethod
    def forward(ctx, x: Tensor, D: int) -> Tensor:
        ctx.save_for_backward(x)
        ctx.D = D
        return x.clamp(0, D).round()

    @staticmethod
    def backward(ctx, g: Tensor):
        (x,) = ctx.saved_tensors
        return g * ((x >= 0) & (x <= ctx.D)).to(g.dtype), None


def integer_fire(x: Tensor, max_spikes: int) -> Tensor:
    return _IntegerFire.apply(x, max_spikes)


def expand_to_spikes(x: Tensor, max_spikes: int) -> Tensor:
    """Integer activations in {0..D} -> D virtual binary steps [D, *x.shape]; step j fires where x > j,
    so the steps sum to x. For spike-driven inference only (no gradient)."""
    D = int(max_spikes)
    if D < 1:
        raise ValueError(f"max_spikes must be a positive integer, got {max_spikes!r}")
    if not torch.equal(x, x.round()) or (x < 0).any() or (x > D).any():
        raise ValueError(f"expand_to_spikes expects integers in [0, {D}]")
    steps = torch.arange(D, device=x.device, dtype=x.dtype).view(D, *([1] * x.dim()))
    return (x.detach().unsqueeze(0) > steps).to(x.dtype)


def _logit_of_rate(tau: float) -> float:
    """w with sigmoid(w) = 1/tau."""
    return -math.log(tau - 1.0)


class ASNNode(SpikingNeuron):
    """Adaptive spiking neuron (see the module docstring).

    Args:
        tau_m: initial membrane time constant (> 1).
        tau_a: initial adaptation time constant (> 1).
        delta_theta: threshold jump per spike (>= 0).
        v_threshold: base threshold theta0 (1: dimensionless).
        channels: size of the last axis for per-channel time constants; None: one scalar pair.
        learnable: learn the time constants (else fixed buffers).
        mode: "spike" (the dynamics above, binary output) or "integer" (round(clamp(x, 0, max_spikes))).
        max_spikes: D, the largest integer activation (integer mode).
        v_reset, surrogate, alpha, detach_reset, backend: as `SpikingNeuron`. With detach_reset the spike
            feeding the reset and the threshold jump carries no gradient.
    """

    kernel_op = "neuron_asn"

    def __init__(self, *, tau_m: float = 2.0, tau_a: float = 4.0, delta_theta: float = 0.5, v_threshold: float = 1.0,
                 channels: Optional[int] = None, learnable: bool = True, mode: str = "spike", max_spikes: int = 4,
                 v_reset: Optional[float] = 0.0, surrogate: Union[str, Surrogate] = "sigmoid", alpha: Optional[float] = None,
                 detach_reset: bool = True, backend: str = "auto"):
        super().__init__(v_threshold=v_threshold, v_reset=v_reset, surrogate=surrogate, alpha=alpha,
                         detach_reset=detach_reset, backend=backend)
        who = "ASNNode"
        for name, tau in (("tau_m", tau_m), ("tau_a", tau_a)):
            if not _positive(name, tau, who) > 1:
                raise ValueError(f"{who}: {name} must be > 1, got {tau}")
        self.delta_theta = float(delta_theta)
        if not math.isfinite(self.delta_theta) or self.delta_theta < 0:
            raise ValueError(f"{who}: delta_theta must be >= 0, got {delta_theta}")
        if channels is not None and (not isinstance(channels, int) or isinstance(channels, bool) or channels < 1):
            raise ValueError(f"{who}: channels must be a positive integer or None, got {channels!r}")
        if mode not in MODES:
            raise ValueError(f"{who}: unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
        if not isinstance(max_spikes, int) or isinstance(max_spikes, bool) or max_spikes < 1:
            raise ValueError(f"{who}: max_spikes must be a positive integer, got {max_spikes!r}")
        if not isinstance(learnable, bool):
            raise ValueError(f"{who}: learnable must be True or False, got {learnable!r}")
        self.channels, self.mode, self.max_spikes = channels, mode, max_spikes
        self.domain = "integer" if mode == "integer" else "binary"
        self.tau_m_init, self.tau_a_init = float(tau_m), float(tau_a)
        if mode == "spike":  # integer mode has no dynamics, hence no time constants
            shape = () if channels is None else (channels,)
            w_m = torch.full(shape, _logit_of_rate(float(tau_m)))
            w_a = torch.full(shape, _logit_of_rate(float(tau_a)))
            if learnable:
                self.w_m, self.w_a = nn.Parameter(w_m), nn.Parameter(w_a)
            else:
                self.register_buffer("w_m", w_m)
                self.register_buffer("w_a", w_a)

    def charge(self, x: Tensor, v: Tensor) -> Tensor:
        return v + self.k_m().to(x.dtype) * (x - v)

    # 1/tau in (0, 1): the per-step leak of v and the relaxation of theta
    def k_m(self) -> Tensor:
        return torch.sigmoid(self.w_m)

    def k_a(self) -> Tensor:
        return torch.sigmoid(self.w_a)

    def _kernel(self, ops, x: Tensor) -> Optional[Tensor]:
        sid = self.surrogate_id(ops)
        if type(self) is not ASNNode or self.mode != "spike" or sid is None:
            return None
        self._check_channels(x)  # the reference's error for a wrong last axis
        soft = self.v_reset is None
        params = (self.v_threshold, 0.0 if soft else float(self.v_reset), self.delta_theta,
                  float(self.surrogate.alpha or 1.0), soft, self.detach_reset, sid)
        return ops.asn(x, self.k_m(), self.k_a(), params)

    def _check_channels(self, x: Tensor) -> None:
        if self.channels is not None and (x.dim() == 0 or x.shape[-1] != self.channels):
            raise ValueError(f"ASNNode(channels={self.channels}) expects the last axis to have {self.channels} "
                             f"channels, got shape {tuple(x.shape)}")

    def step(self, x: Tensor, state: Optional[Tuple[Tensor, Tensor]] = None):
        if self.mode == "integer":
            return integer_fire(x, self.max_spikes), None
        self._check_channels(x)
        if state is None:
            v, theta = self.rest(x), torch.full_like(x, self.v_threshold)
        else:
            v, theta = state
        h = self.charge(x, v)
        s = self.surrogate(h - theta)
        s_r = s.detach() if self.detach_reset else s
        if self.v_reset is None:
            v = h - s_r * theta
        else:
            v = h * (1 - s_r) + self.v_reset * s_r
        theta = self.v_threshold + (1 - self.k_a().to(x.dtype)) * (theta - self.v_threshold) + self.delta_theta * s_r
        return s, (v, theta)

    def extra_repr(self) -> str:
        if self.mode == "integer":
            return f"mode='integer', max_spikes={self.max_spikes}"
        return (f"tau_m={self.tau_m_init}, tau_a={self.tau_a_init}, delta_theta={self.delta_theta}, channels={self.channels}, "
                + super().extra_repr())
