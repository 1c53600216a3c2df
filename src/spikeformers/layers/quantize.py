"""Weight quantization for quantized twins: symmetric per-tensor b-bit weights with a straight-through
gradient, as a parametrization of every Linear and Conv weight (the float weight stays the one trained).

    quantize_weights(model, bits=8)   # weight -> s * clamp(round(w / s), -(2^(b-1) - 1), 2^(b-1) - 1), s = max|w| / (2^(b-1) - 1)
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

__all__ = ["WeightQuant", "quantize_weights"]


class WeightQuant(nn.Module):
    def __init__(self, bits: int):
        super().__init__()
        if not isinstance(bits, int) or isinstance(bits, bool) or not 2 <= bits <= 16:
            raise ValueError(f"weight bits must be an integer in 2..16, got {bits!r}")
        self.bits, self.qmax = bits, 2 ** (bits - 1) - 1

    def forward(self, w: Tensor) -> Tensor:
        s = w.detach().abs().amax().clamp_min(1e-12) / self.qmax
        wq = torch.clamp(torch.round(w / s), -self.qmax, self.qmax) * s
        return w + (wq - w).detach()

    def extra_repr(self) -> str:
        return f"bits={self.bits}"


def quantize_weights(model: nn.Module, bits: int) -> nn.Module:
    """Quantize (fake-quant, straight-through) the weight of every Linear and Conv in `model`, in place."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) and not parametrize.is_parametrized(m, "weight"):
            parametrize.register_parametrization(m, "weight", WeightQuant(bits))
    return model
