"""The neuron a quantized ReLU becomes: a signed integrate-and-fire neuron with a spike-count tracer (ST-BIF,
You et al., SpikeZIP-TF, ICML 2024), soft reset and the half-threshold initial membrane of QCFS (Bu et al.,
ICLR 2022).

    v[0] = theta / 2,  n[0] = 0                            theta = the quantizer's learned step s
    h    = v[t-1] + x[t]
    s[t] = +1 if h >= theta and n < L                      L = the quantizer's levels (2^bits - 1)
           -1 if h < 0 and n > 0      (signed=True)        takes back a spike that earlier input did not earn
            0 otherwise
    v[t] = h - s[t] theta,  n[t] = n[t-1] + s[t],  output s[t] theta

Invariant: v[t] + n[t] theta = theta / 2 + X[t], X[t] the input summed so far. Once no spike fires, either
0 <= v < theta, so n = floor(X / theta + 1/2), or n sits at 0 or L: n = clamp(floor(X / theta + 1/2), 0, L),
which is the quantizer's round(clamp(X / s, 0, L)) (they differ only on exact ties X / s = k + 1/2, where
torch rounds half to even). So the spikes summed over time equal the quantized activation of the summed
input exactly, at most L steps after the input stops changing: the neuron is equivalent, not approximate.

`signed=False` gives the QCFS neuron (no negative spike, no count bound): a neuron that fired too early can
never take a spike back, which is why it converts exactly only under QCFS's even-input assumption.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from ...neurons.base import Neuron

__all__ = ["STBIFNode"]


class STBIFNode(Neuron):
    """Signed IF neuron with a spike-count tracer; output spikes of amplitude `threshold` (see the module
    docstring). `threshold` is a buffer (it travels with the checkpoint); `levels` is L."""

    domain = "ternary"
    decay = 0.0  # no leak: the energy counter charges no leak multiply (`energy.handlers.neuron_leaks`)

    def __init__(self, *, threshold: Union[float, Tensor] = 1.0, levels: int = 1, signed: bool = True):
        super().__init__()
        if not isinstance(levels, int) or isinstance(levels, bool) or levels < 1:
            raise ValueError(f"STBIFNode: levels must be a positive integer, got {levels!r}")
        if not isinstance(signed, bool):
            raise ValueError(f"STBIFNode: signed must be True or False, got {signed!r}")
        # a tensor keeps its dtype and device (the quantizer's step: float64 stays float64, meta stays meta)
        theta = threshold.detach().clone().reshape(()) if isinstance(threshold, Tensor) else torch.tensor(float(threshold))
        if theta.device.type != "meta" and not float(theta) > 0:
            raise ValueError(f"STBIFNode: threshold must be > 0, got {float(theta)}")
        self.levels, self.signed = levels, signed
        self.register_buffer("threshold", theta)

    def step(self, x: Tensor, state: Optional[Tuple[Tensor, Tensor]] = None) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
        theta = self.threshold.to(x.dtype)
        if state is None:
            v, n = torch.full_like(x, 0.5) * theta, torch.zeros_like(x)
        else:
            v, n = state
        h = v + x
        s = ((h >= theta) & (n < self.levels)).to(x.dtype)
        if self.signed:
            s = s - ((h < 0) & (n > 0)).to(x.dtype)
        else:  # QCFS: no tracer bound either
            s = (h >= theta).to(x.dtype)
        return s * theta, (h - s * theta, n + s)

    def extra_repr(self) -> str:
        theta = "meta" if self.threshold.device.type == "meta" else f"{float(self.threshold):.6g}"
        return f"threshold={theta}, levels={self.levels}, signed={self.signed}"
