"""Input encoders: a static batch `[B, ...]` with values in [0, 1] -> a time-first sequence `[T, B, ...]`.

- direct:  the analog input repeated at every step (every official spiking transformer; the first
           conv then sees real values, which the energy counter charges as MACs).
- rate:    Bernoulli spikes with P(spike at t) = x (clamped to [0, 1]); `seed` fixes the draws.
- latency: one spike per input at t_f = round((1 - x) (T - 1)): x = 1 fires at t = 0, dimmer inputs
           later, x <= 0 never fires (time-to-first-spike coding).
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import Tensor, nn

from ._registry import Registry

__all__ = ["Encoder", "DirectEncoder", "RateEncoder", "LatencyEncoder", "create_encoder", "list_encoders"]

ENCODERS = Registry("encoder")


class Encoder(nn.Module):
    """Base: `forward(x[B, ...]) -> [T, B, ...]`. `domain` is the output value domain."""

    domain = "real"

    def __init__(self, T: int):
        super().__init__()
        if not isinstance(T, int) or T < 1:
            raise ValueError(f"{type(self).__name__}: T must be a positive integer, got {T!r}")
        self.T = T

    def extra_repr(self) -> str:
        return f"T={self.T}"


@ENCODERS.register("direct")
class DirectEncoder(Encoder):
    def forward(self, x: Tensor) -> Tensor:
        return x.unsqueeze(0).expand(self.T, *x.shape)


@ENCODERS.register("rate")
class RateEncoder(Encoder):
    """Bernoulli rate coding. With `seed`, draws come from a private generator (same seed, same spikes)."""

    domain = "binary"

    def __init__(self, T: int, seed: Optional[int] = None):
        super().__init__(T)
        self.seed = seed
        self._gens: Dict[torch.device, torch.Generator] = {}

    def _generator(self, device: torch.device) -> Optional[torch.Generator]:
        if self.seed is None:
            return None
        if device not in self._gens:
            self._gens[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._gens[device]

    def forward(self, x: Tensor) -> Tensor:
        p = x.clamp(0, 1).unsqueeze(0).expand(self.T, *x.shape)
        return torch.bernoulli(p, generator=self._generator(x.device)).to(x.dtype)


@ENCODERS.register("latency")
class LatencyEncoder(Encoder):
    domain = "binary"

    def forward(self, x: Tensor) -> Tensor:
        xc = x.clamp(0, 1)
        t_fire = torch.round((1 - xc) * (self.T - 1))  # brighter -> earlier
        steps = torch.arange(self.T, device=x.device, dtype=x.dtype).view(-1, *([1] * x.dim()))
        return ((steps == t_fire) & (x > 0)).to(x.dtype)


def create_encoder(name: str, T: int, **opts) -> Encoder:
    cls = ENCODERS.get(name)
    if opts and cls is not RateEncoder:
        raise ValueError(f"encoder {name!r} takes no options, got {', '.join(opts)}")
    return cls(T, **opts)


def list_encoders():
    return ENCODERS.names()
