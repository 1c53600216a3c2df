"""Exponential moving average of a model's weights (`run.ema`)."""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["EMA"]


class EMA:
    """Exponential moving average of the parameters and floating-point buffers (BatchNorm statistics),
    evaluated instead of the raw model; integer buffers are copied.

    The decay warms up as min(decay, (1 + n) / (10 + n)) after n earlier updates (timm's ModelEmaV2
    warm-up): without it the average is dominated by the initial weights for ~1 / (1 - decay) steps.
    Averaging the BN statistics with the weights keeps them matched to the averaged weights.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ConfigError(f"run.ema must be in (0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def decay_at(self, n: int) -> float:
        """The decay of the update that follows n earlier updates."""
        return min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self, model: nn.Module, n: int) -> None:
        w = 1 - self.decay_at(n)
        ema_t = list(self.model.parameters())
        live_t = [p.detach() for p in model.parameters()]
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            if b.is_floating_point():
                ema_t.append(b_ema)
                live_t.append(b)
            else:
                b_ema.copy_(b)
        torch._foreach_lerp_(ema_t, live_t, w)
