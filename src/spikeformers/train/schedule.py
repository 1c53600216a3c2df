"""Learning-rate schedule: linear warmup, then cosine decay to `min_lr` (per optimizer step)."""
from __future__ import annotations

import math

__all__ = ["warmup_cosine"]


def warmup_cosine(step: int, *, total_steps: int, warmup_steps: int, base_lr: float, min_lr: float) -> float:
    """The learning rate at `step` (0-based): warmup from ~0 to base_lr, then cosine to min_lr."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_lr + (base_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
