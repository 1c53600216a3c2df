"""Measured statistics of a tensor that feeds an operation: value domain, firing rate, value mass.

The domain is read from the values, never assumed from the module that produced them:

    binary   every non-zero value has the same magnitude a > 0 and none is negative ({0, a}; a = 1 for
             plain spikes, another a is a spike amplitude that folds into the next layer's weights)
    ternary  as binary, with both signs ({-a, 0, a})
    integer  integral values of several magnitudes (Spikformer's residual sums of spikes, multi-spikes)
    real     anything else (an analog image, a ReLU output, a softmax)
    unknown  tensors without values (the `meta` device: shapes only)

Statistics merge over calls (a module that runs several times, several batches), so a layer's domain
is the widest it took and its rate is the fraction of non-zero elements over everything it saw.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

import torch
from torch import Tensor

__all__ = ["TensorStats", "tensor_stats", "SPIKE_DOMAINS"]

#: domains whose non-zero elements are single events (accumulates, not multiplies)
SPIKE_DOMAINS = ("binary", "ternary")


@dataclass(frozen=True)
class TensorStats:
    """Counts over every element seen. `numel` counts elements (all time steps, all images)."""

    numel: int = 0
    nnz: float = 0.0  # non-zero elements
    abs_sum: float = 0.0  # sum of |x|: the number of unit events when x holds spike counts
    vmin: float = math.inf
    vmax: float = -math.inf
    amp_min: float = math.inf  # smallest |x| among non-zero elements (0 when several magnitudes)
    amp_max: float = 0.0  # largest |x|
    integral: bool = True  # every value an integer
    known: bool = True  # False for meta tensors (no values)

    # --- derived -----------------------------------------------------------------------------
    @property
    def domain(self) -> str:
        if not self.known:
            return "unknown"
        if self.nnz == 0:
            return "binary"
        if self.amp_min == self.amp_max:  # one magnitude: a spike of amplitude a
            return "binary" if self.vmin >= 0 else "ternary"
        return "integer" if self.integral else "real"

    @property
    def rate(self) -> float:
        """Fraction of non-zero elements (a ternary -1 is a spike)."""
        return self.nnz / self.numel if self.numel else 0.0

    @property
    def events_per_element(self) -> float:
        """Unit events per element: the rate for spikes, the mean value for non-negative spike counts."""
        if self.domain in SPIKE_DOMAINS:
            return self.rate
        return self.abs_sum / self.numel if self.numel else 0.0

    @property
    def bits(self) -> Optional[int]:
        """Bits a value needs: 1 binary, 2 ternary, ceil(log2(max+1)) (+ sign) integer, None real/unknown."""
        d = self.domain
        if d == "binary":
            return 1
        if d == "ternary":
            return 2
        if d == "integer":
            return max(1, math.ceil(math.log2(self.amp_max + 1))) + (1 if self.vmin < 0 else 0)
        return None

    def is_multi_spike(self, k: int) -> bool:
        """Non-negative integers no larger than k (Spikingformer's `Nspks_max`): k unit events at most."""
        return self.known and self.domain == "integer" and self.vmin >= 0 and self.vmax <= k

    # --- combination -------------------------------------------------------------------------
    def merge(self, other: "TensorStats") -> "TensorStats":
        return TensorStats(
            numel=self.numel + other.numel, nnz=self.nnz + other.nnz, abs_sum=self.abs_sum + other.abs_sum,
            vmin=min(self.vmin, other.vmin), vmax=max(self.vmax, other.vmax),
            amp_min=min(self.amp_min, other.amp_min), amp_max=max(self.amp_max, other.amp_max),
            integral=self.integral and other.integral, known=self.known and other.known,
        )

    def scaled(self, factor: float) -> "TensorStats":
        """Counts multiplied by `factor` (per image, or a first layer counted once instead of T times)."""
        return replace(self, numel=self.numel * factor, nnz=self.nnz * factor, abs_sum=self.abs_sum * factor)

    @staticmethod
    def spikes(numel: float, rate: float) -> "TensorStats":
        """Binary spikes at a given firing rate (for counting from rates instead of a forward pass)."""
        nnz = rate * numel
        return TensorStats(numel=numel, nnz=nnz, abs_sum=nnz, vmin=0.0, vmax=1.0 if nnz else 0.0,
                           amp_min=1.0 if nnz else math.inf, amp_max=1.0 if nnz else 0.0)

    def to_dict(self) -> dict:
        return {"domain": self.domain, "rate": self.rate, "events_per_element": self.events_per_element,
                "min": self.vmin if self.known and self.numel else None,
                "max": self.vmax if self.known and self.numel else None, "bits": self.bits}


@torch.no_grad()
def tensor_stats(x: Tensor) -> TensorStats:
    """Statistics of one tensor: four passes over a tensor of spikes, six otherwise."""
    n = x.numel()
    if x.device.type == "meta":
        return TensorStats(numel=n, known=False)
    if n == 0:
        return TensorStats()
    x = x.detach()
    if not x.is_floating_point():
        x = x.double()
    vmin, vmax = (float(v) for v in torch.aminmax(x))
    amp_max = max(abs(vmin), abs(vmax))
    a = x if vmin >= 0 else x.abs()
    nnz, abs_sum, at_max = (float(v) for v in torch.stack([
        torch.count_nonzero(x).to(a.dtype), a.sum(), (a == amp_max).sum().to(a.dtype)]).double().cpu())
    single = nnz > 0 and at_max == nnz  # every non-zero value has the magnitude amp_max
    integral = True if single and float(amp_max).is_integer() else bool((torch.frac(x) == 0).all())
    # amp_min only tells one magnitude from several: amp_max when single, 0 otherwise (merging keeps this)
    return TensorStats(numel=n, nnz=nnz, abs_sum=abs_sum, vmin=vmin, vmax=vmax,
                       amp_min=(amp_max if single else 0.0) if nnz else math.inf, amp_max=amp_max if nnz else 0.0,
                       integral=integral)
