"""Classification losses: cross-entropy with label smoothing on hard or soft targets, and TET.

- Targets are labels `[B]` (int64) or probabilities `[B, classes]` (mixup/cutmix). Smoothing by eps
  replaces a target distribution q with (1 - eps) q + eps / classes, the same for both kinds, so a
  one-hot soft target gives exactly `F.cross_entropy(..., label_smoothing=eps)`.
- TET (Deng et al., ICLR 2022, https://arxiv.org/abs/2202.11946) trains every time step's output:
  with per-step logits `O [T, B, classes]` (`model(x, per_step=True)`),
      L = (1 - lambda) * mean_t CE(O_t, y) + lambda * MSE(O, means)
  as in the official code (means 1.0, lambda 0.001 in SDT's CIFAR10-DVS config). Predictions still
  use the mean over t of O_t.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ClassificationLoss", "soft_cross_entropy"]


def soft_cross_entropy(logits: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Mean cross-entropy of `logits [B, C]` against labels `[B]` or probabilities `[B, C]`."""
    if target.dtype in (torch.int64, torch.int32):
        return F.cross_entropy(logits, target.long(), label_smoothing=label_smoothing)
    if label_smoothing:
        target = target * (1.0 - label_smoothing) + label_smoothing / logits.shape[-1]
    return -(target * F.log_softmax(logits, dim=-1)).sum(-1).mean()


class ClassificationLoss(nn.Module):
    """`loss(logits, target)`: logits `[B, C]`, or `[T, B, C]` per step when `tet` (`per_step` is then True)."""

    def __init__(self, label_smoothing: float = 0.0, tet: bool = False, tet_lambda: float = 0.001,
                 tet_means: float = 1.0):
        super().__init__()
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        if not 0 <= tet_lambda < 1:
            raise ValueError(f"tet_lambda must be in [0, 1), got {tet_lambda}")
        self.label_smoothing = label_smoothing
        self.tet, self.tet_lambda, self.tet_means = tet, tet_lambda, tet_means

    @property
    def per_step(self) -> bool:
        """Does this loss want per-step logits `[T, B, C]`?"""
        return self.tet

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        if not self.tet:
            return soft_cross_entropy(logits, target, self.label_smoothing)
        if logits.dim() != 3:
            raise ValueError(f"TET needs per-step logits [T, B, classes], got shape {tuple(logits.shape)}")
        T = logits.shape[0]
        per_step = soft_cross_entropy(logits.flatten(0, 1), target.repeat(T, *[1] * (target.dim() - 1)),
                                      self.label_smoothing)  # mean over T*B = mean_t of CE_t
        if not self.tet_lambda:
            return per_step
        mse = F.mse_loss(logits, torch.full_like(logits, self.tet_means))
        return (1 - self.tet_lambda) * per_step + self.tet_lambda * mse

    def extra_repr(self) -> str:
        tet = f", tet=True, tet_lambda={self.tet_lambda}, tet_means={self.tet_means}" if self.tet else ""
        return f"label_smoothing={self.label_smoothing}{tet}"
