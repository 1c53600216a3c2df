"""Classification head: mean over tokens, Linear, per-step logits (the model averages over T)."""
from __future__ import annotations

from torch import Tensor, nn

__all__ = ["ClassifierHead"]


class ClassifierHead(nn.Module):
    """[T, B, N, D] -> per-step logits [T, B, classes]. Linear commutes with the mean over T."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x.mean(2))
