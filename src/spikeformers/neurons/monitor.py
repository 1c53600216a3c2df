"""Per-layer firing rates, measured with forward hooks on every spiking neuron.

The rate of a layer is the fraction of non-zero outputs (a ternary -1 counts as a spike), averaged
over every element, time step and sample seen while the monitor is active. Sums stay on the device:
no host synchronisation until `rates()` is read.
"""
from __future__ import annotations

from typing import Dict, List

import torch
from torch import nn

from .base import Neuron

__all__ = ["FiringRateMonitor", "spiking_layers"]


def spiking_layers(model: nn.Module) -> Dict[str, Neuron]:
    """Named neurons whose output is spikes (binary, ternary or integer), in forward order of definition."""
    return {name: m for name, m in model.named_modules() if isinstance(m, Neuron) and m.domain != "real"}


class FiringRateMonitor:
    """Context manager: `with FiringRateMonitor(model) as mon: model(x)`, then `mon.rates()`."""

    def __init__(self, model: nn.Module):
        self.layers = spiking_layers(model)
        self._handles: List = []
        self._spikes: Dict[str, torch.Tensor] = {}
        self._count: Dict[str, int] = {}

    def _hook(self, name: str):
        def hook(module, inputs, output):
            out = output.detach()
            s = (out != 0).sum()
            self._spikes[name] = self._spikes[name] + s if name in self._spikes else s
            self._count[name] = self._count.get(name, 0) + out.numel()

        return hook

    def __enter__(self) -> "FiringRateMonitor":
        self._handles = [m.register_forward_hook(self._hook(n)) for n, m in self.layers.items()]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def rates(self) -> Dict[str, float]:
        """Layer name -> firing rate in [0, 1], in the order the layers first ran (unused layers omitted)."""
        return {n: float(s) / self._count[n] for n, s in self._spikes.items()}

    def mean_rate(self) -> float:
        total = sum(self._count.values())
        return float(sum(float(v) for v in self._spikes.values())) / total if total else 0.0
