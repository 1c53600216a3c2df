"""Homeostatic threshold control: hold each channel's firing rate inside a target band.

    s     = neuron(x / theta_c)            theta_c: per-channel threshold scale (a buffer, starts at 1)
    after each training forward, with r_c the channel's measured rate (mean |s| over T, batch, tokens):
    theta_c <- theta_c * (1 + eta)   if r_c > hi        (fires too often: raise the threshold)
    theta_c <- theta_c / (1 + eta)   if r_c < lo        (too quiet: lower it)
Dividing the input by theta_c equals multiplying the inner neuron's threshold by theta_c for neurons
that are homogeneous in (v, x) with reset to 0 (IF, LIF, ASN with its delta_theta scaled alike).
The controller is deterministic (it depends only on the data seen), not trained by gradient, and
frozen in eval mode, like BN running statistics; gradients flow through x / theta_c to the input.
At inference theta_c folds into the preceding BN. Under DDP the default buffer broadcast keeps every
rank on rank 0's values.
"""
from __future__ import annotations

from typing import Any, Sequence, Tuple

import torch
from torch import Tensor, nn

from .base import Neuron

__all__ = ["Homeostatic"]


class Homeostatic(Neuron):
    """Wraps `neuron` with a per-channel (last axis) threshold scale steered into `target` = (lo, hi).

    Args:
        neuron: the inner neuron module.
        channels: size of the last axis.
        target: firing-rate band (lo, hi), default 5-15 %.
        step: multiplicative step eta of the controller (0.05).
        bounds: clamp of the scale (1e-3, 1e3), so a silent channel cannot drive it to zero.
    """

    def __init__(self, neuron: nn.Module, channels: int, *, target: Sequence[float] = (0.05, 0.15), step: float = 0.05,
                 bounds: Tuple[float, float] = (1e-3, 1e3)):
        super().__init__()
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"Homeostatic: channels must be a positive integer, got {channels!r}")
        lo, hi = (float(t) for t in target)
        if not 0.0 <= lo < hi <= 1.0:
            raise ValueError(f"Homeostatic: target must be a rate band (lo, hi) with 0 <= lo < hi <= 1, got {tuple(target)}")
        if not float(step) > 0:
            raise ValueError(f"Homeostatic: step must be positive, got {step!r}")
        self.neuron = neuron
        self.domain = getattr(neuron, "domain", "real")
        self.target, self.step_size, self.bounds = (lo, hi), float(step), (float(bounds[0]), float(bounds[1]))
        self.register_buffer("scale", torch.ones(channels))

    def _gain_input(self, x: Tensor) -> Tensor:
        # a copy: backward needs the scale as it was, and `update` changes the buffer in place
        return x / self.scale.to(x.dtype, copy=True)

    def step(self, x: Tensor, state: Any = None) -> Tuple[Tensor, Any]:
        return self.neuron.step(self._gain_input(x), state)

    def forward(self, x: Tensor) -> Tensor:
        s = self.neuron(self._gain_input(x))
        if self.training:
            self.update(s)
        return s

    @torch.no_grad()
    def update(self, s: Tensor) -> None:
        """One controller step from the spikes `s` [..., channels] of a training forward."""
        rate = s.detach().abs().float().reshape(-1, s.shape[-1]).mean(0)
        up = 1.0 + self.step_size
        factor = torch.where(rate > self.target[1], up, torch.where(rate < self.target[0], 1.0 / up, 1.0))
        self.scale.mul_(factor.to(self.scale.dtype)).clamp_(*self.bounds)

    def rates_in_target(self, s: Tensor) -> Tensor:
        """Per channel: is the measured rate of `s` inside the band? (for monitoring and tests)"""
        rate = s.detach().abs().float().reshape(-1, s.shape[-1]).mean(0)
        return (rate >= self.target[0]) & (rate <= self.target[1])

    def extra_repr(self) -> str:
        return f"target={self.target}, step={self.step_size}"
