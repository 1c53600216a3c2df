"""Integrate-and-fire family: IF, LIF (decay_input, the official Spikformer/SDT neuron) and PLIF.

LIF with decay_input (Spikformer Eq. 1-3):
    H[t] = V[t-1] + (X[t] - (V[t-1] - V_reset)) / tau
    S[t] = Heaviside(H[t] - V_th)
    V[t] = H[t] (1 - S[t]) + V_reset S[t]
With defaults (tau 2, V_th 1, V_reset 0, sigmoid alpha 4, detach_reset) spikes and input gradients
equal SpikingJelly's multi-step `LIFNode` (tested).
"""
from __future__ import annotations

import math
from typing import Any, Optional

import torch
from torch import Tensor, nn

from .base import SpikingNeuron, _positive

__all__ = ["IFNode", "LIFNode", "PLIFNode"]


def _lif_kernel_params(neuron: SpikingNeuron, ops: Any, kind: int, k: float) -> Optional[tuple]:
    """(k, v_th, v_reset, alpha, kind, soft, detach, surrogate id) for `kernels.neuron.lif`, or None when the
    kernels lack the neuron's surrogate. kind: 0 IF, 1 LIF with decay_input, 2 LIF without."""
    sid = neuron.surrogate_id(ops)
    if sid is None:
        return None
    soft = neuron.v_reset is None
    return (k, neuron.v_threshold, 0.0 if soft else neuron.v_reset, float(neuron.surrogate.alpha or 1.0), kind, soft,
            neuron.detach_reset, sid)


class IFNode(SpikingNeuron):
    """Integrate-and-fire: H[t] = V[t-1] + X[t]."""

    def charge(self, x: Tensor, v: Tensor) -> Tensor:
        return v + x

    def kernel_params(self, ops: Any) -> Optional[tuple]:
        return _lif_kernel_params(self, ops, kind=0, k=0.0)

    def _kernel(self, ops: Any, x: Tensor) -> Optional[Tensor]:
        # exact types: a subclass with other dynamics (BipolarNode, a user's) gets the reference
        if type(self) is not IFNode:
            return None
        params = self.kernel_params(ops)
        return None if params is None else ops.lif(x, None, params)


class LIFNode(SpikingNeuron):
    """Leaky integrate-and-fire with time constant `tau` (> 1).

    decay_input=True:  H = V + (X - (V - V_reset)) / tau   (input scaled by 1/tau, as in every official repo)
    decay_input=False: H = V - (V - V_reset) / tau + X
    """

    def __init__(self, *, tau: float = 2.0, decay_input: bool = True, **kw):
        super().__init__(**kw)
        self.tau = _positive("tau", tau, type(self).__name__)
        if self.tau <= 1:
            raise ValueError(f"{type(self).__name__}: tau must be > 1 (decay 1/tau in (0, 1)), got {tau}")
        self.decay_input = bool(decay_input)

    def decay(self) -> Tensor | float:
        return 1.0 / self.tau

    def charge(self, x: Tensor, v: Tensor) -> Tensor:
        k = self.decay()
        rest = 0.0 if self.v_reset is None else self.v_reset
        if self.decay_input:
            return v + (x - (v - rest)) * k
        return v - (v - rest) * k + x

    def kernel_params(self, ops: Any) -> Optional[tuple]:
        """As `IFNode.kernel_params`; k = 1/tau (0 for PLIF, whose decay the kernel reads as a tensor)."""
        k = 0.0 if isinstance(self, PLIFNode) else 1.0 / self.tau
        return _lif_kernel_params(self, ops, kind=1 if self.decay_input else 2, k=k)

    def _kernel(self, ops: Any, x: Tensor) -> Optional[Tensor]:
        if type(self) not in (LIFNode, PLIFNode):  # exact types, as IFNode._kernel
            return None
        params = self.kernel_params(ops)
        if params is None:
            return None
        return ops.lif(x, self.decay() if type(self) is PLIFNode else None, params)

    def extra_repr(self) -> str:
        return f"tau={self.tau}, decay_input={self.decay_input}, " + super().extra_repr()


class PLIFNode(LIFNode):
    """Parametric LIF (Fang et al. 2021): 1/tau = sigmoid(w) is learned, one scalar per layer.

    `tau` is the initial time constant (w = -log(tau - 1)).
    """

    def __init__(self, *, tau: float = 2.0, **kw):
        super().__init__(tau=tau, **kw)
        self.w = nn.Parameter(torch.tensor(-math.log(self.tau - 1.0)))

    def decay(self) -> Tensor:
        return torch.sigmoid(self.w)
