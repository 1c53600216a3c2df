"""Fused neuron kernels. `dispatch(neuron, x)` returns the fused result or None (use the reference)."""
from __future__ import annotations

from typing import Optional

from torch import Tensor

__all__ = ["dispatch", "kernel_status"]


def dispatch(neuron, x: Tensor) -> Optional[Tensor]:
    if neuron.backend == "triton":
        raise RuntimeError("the Triton backend is not available in this build")
    return None


def kernel_status() -> str:
    return "none (reference PyTorch neurons only)"
