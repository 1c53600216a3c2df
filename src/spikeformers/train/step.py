"""The training step's forward, loss, backward and gradient clipping, shared by the eager loop and the
CUDA-graph capture (`cuda_graph.py`), so both compute exactly the same thing."""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

__all__ = ["forward_backward"]


def forward_backward(model: nn.Module, x: Tensor, y: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor],
                     amp: Optional[torch.dtype], grad_clip: Optional[float], params: Sequence[Tensor],
                     per_step: bool = False, cache: bool = True) -> Tuple[Tensor, Tensor]:
    """(loss, logits `[B, classes]`), both detached, after `loss.backward()` and clipping `params`.

    `per_step`: the model returns per-step logits `[T, B, classes]` for the loss (TET); their mean over T
    is returned. `cache=False` disables autocast's weight-cast cache (required inside a graph capture)."""
    with torch.autocast(x.device.type, dtype=amp or torch.float32, enabled=amp is not None, cache_enabled=cache):
        logits = model(x, per_step=True) if per_step else model(x)
    loss = loss_fn(logits.float(), y)
    loss.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_(params, grad_clip)
    if per_step:
        logits = logits.mean(0)
    return loss.detach(), logits.detach()
