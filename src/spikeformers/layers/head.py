"""Classification head: mean over tokens, optional neuron, Linear; per-step logits (the model averages over T)."""
from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

__all__ = ["ClassifierHead"]


class ClassifierHead(nn.Module):
    """[T, B, N, D] -> per-step logits [T, B, classes]. Linear commutes with the mean over T.

    `neuron` (SDT): a spiking neuron between the token mean and the Linear, so the classifier sees
    spikes: mean_tokens -> SN -> Linear (Yao et al. 2023). None (Spikformer, QKFormer): no neuron.
    """

    def __init__(self, dim: int, num_classes: int, neuron: Optional[nn.Module] = None):
        super().__init__()
        self.neuron = neuron if neuron is not None else nn.Identity()
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.neuron(x.mean(2)))  # [T, B, D] -> [T, B, classes]
