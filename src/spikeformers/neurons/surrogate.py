"""Surrogate gradients for the Heaviside spike function.

Each surrogate has a smooth *primitive* g(x) (a sigmoid-like curve from 0 to 1) and uses its
derivative g'(x) in place of the Heaviside's zero-almost-everywhere gradient. The forward pass is
always the exact step `x >= 0`. Conventions follow SpikingJelly (Fang et al.), so `Sigmoid(4)` and
`ATan(2)` match its defaults.

Each neuron owns its surrogate instance: `alpha` set by a user is the one the backward uses.
"""
from __future__ import annotations

import math
from typing import Optional, Union

import torch
from torch import Tensor, nn

from .._registry import Registry

__all__ = [
    "Surrogate", "Sigmoid", "ATan", "Triangle", "Rectangle", "StraightThrough",
    "create_surrogate", "list_surrogates", "heaviside",
]

SURROGATES = Registry("surrogate")


class _Heaviside(torch.autograd.Function):
    """Forward: step(x) = (x >= 0). Backward: grad * surrogate.derivative(x)."""

    @staticmethod
    def forward(ctx, x: Tensor, surrogate: "Surrogate") -> Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(x), None


class Surrogate(nn.Module):
    """Base class. Subclasses define `primitive` (smooth step) and `derivative` (its slope)."""

    alpha: Optional[float] = None

    def primitive(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def derivative(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return _Heaviside.apply(x, self)

    def extra_repr(self) -> str:
        return "" if self.alpha is None else f"alpha={self.alpha}"


def _check_alpha(name: str, alpha: float) -> float:
    alpha = float(alpha)
    if not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"surrogate {name!r}: alpha must be a positive number, got {alpha}")
    return alpha


@SURROGATES.register("sigmoid")
class Sigmoid(Surrogate):
    """g(x) = sigmoid(alpha x); g'(x) = alpha s (1 - s). Spikformer/SDT default alpha = 4."""

    def __init__(self, alpha: float = 4.0):
        super().__init__()
        self.alpha = _check_alpha("sigmoid", alpha)

    def primitive(self, x):
        return torch.sigmoid(self.alpha * x)

    def derivative(self, x):
        s = torch.sigmoid(self.alpha * x)
        return self.alpha * s * (1 - s)


@SURROGATES.register("atan")
class ATan(Surrogate):
    """g(x) = atan(pi/2 alpha x)/pi + 1/2; g'(x) = alpha / 2 / (1 + (pi/2 alpha x)^2). Default alpha = 2."""

    def __init__(self, alpha: float = 2.0):
        super().__init__()
        self.alpha = _check_alpha("atan", alpha)

    def primitive(self, x):
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5

    def derivative(self, x):
        return self.alpha / 2 / (1 + (math.pi / 2 * self.alpha * x) ** 2)


@SURROGATES.register("triangle")
class Triangle(Surrogate):
    """g'(x) = alpha * max(0, 1 - alpha |x|): a triangle of area 1 and half-width 1/alpha."""

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = _check_alpha("triangle", alpha)

    def primitive(self, x):
        z = (self.alpha * x).clamp(-1, 1)
        return 0.5 + z - 0.5 * z * z.abs()

    def derivative(self, x):
        return self.alpha * (1 - self.alpha * x.abs()).clamp_min(0)


@SURROGATES.register("rectangle")
class Rectangle(Surrogate):
    """g'(x) = alpha if |x| < 1/(2 alpha) else 0: a box of area 1 (Wu et al. 2018)."""

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = _check_alpha("rectangle", alpha)

    def primitive(self, x):
        return (self.alpha * x + 0.5).clamp(0, 1)

    def derivative(self, x):
        return self.alpha * (x.abs() < 0.5 / self.alpha).to(x.dtype)


@SURROGATES.register("ste")
class StraightThrough(Surrogate):
    """Straight-through estimator: g'(x) = 1 everywhere (the step is treated as the identity)."""

    def primitive(self, x):
        return x

    def derivative(self, x):
        return torch.ones_like(x)


def create_surrogate(name: Union[str, Surrogate] = "sigmoid", alpha: Optional[float] = None) -> Surrogate:
    """Build a fresh surrogate by name; `alpha=None` keeps the surrogate's own default.

    Passing an instance returns it unchanged (then `alpha` must be None).
    """
    if isinstance(name, Surrogate):
        if alpha is not None:
            raise ValueError("pass alpha either to the surrogate instance or here, not both")
        return name
    cls = SURROGATES.get(name)
    if alpha is None:
        return cls()
    if cls is StraightThrough:
        raise ValueError("surrogate 'ste' takes no alpha")
    return cls(alpha=alpha)


def list_surrogates():
    return SURROGATES.names()


def heaviside(x: Tensor, surrogate: Surrogate) -> Tensor:
    """Spike = (x >= 0) in x's dtype, with `surrogate`'s derivative as the gradient."""
    return _Heaviside.apply(x, surrogate)
