"""Shared by the language-model tests: a model's logits produced one token at a time through `step()`."""
from __future__ import annotations

import torch


def logits_by_step(model, ids):
    """`model.step` over the tokens of `ids [B, N]`: the stacked logits `[B, N, vocab]` and the last state."""
    state, steps = None, []
    for n in range(ids.shape[1]):
        logits, state = model.step(ids[:, n], state)
        steps.append(logits)
    return torch.stack(steps, 1), state
