"""The training step's forward, loss, backward and gradient clipping, shared by the eager loop and the
CUDA-graph capture (`cuda_graph.py`), so both compute exactly the same thing."""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.utils._pytree import tree_map

__all__ = ["forward_backward"]


def forward_backward(model: nn.Module, x: Tensor, y: Any, loss_fn: Callable[[Any, Any], Tensor],
                     amp: Optional[torch.dtype], grad_clip: Optional[float], params: Sequence[Tensor],
                     per_step: bool = False, cache: bool = True) -> Tuple[Tensor, Any]:
    """(loss, output), both detached, after `loss.backward()` and clipping `params`.

    The output is the model's (logits `[B, classes]`, or a dict of tensors for dense tasks), in float32.
    `per_step`: the model returns per-step logits `[T, B, classes]` for the loss (TET); their mean over T
    is returned. A loss with a `teach(x)` method (`tasks/distill.py`) gets its result as a third argument,
    computed here under the same autocast (and so inside a CUDA graph's capture). `cache=False` disables
    autocast's weight-cast cache (required inside a graph capture)."""
    teach = getattr(loss_fn, "teach", None)  # distillation: the teacher's forward, under the same autocast
    with torch.autocast(x.device.type, dtype=amp or torch.float32, enabled=amp is not None, cache_enabled=cache):
        out = model(x, per_step=True) if per_step else model(x)
        taught = () if teach is None else (teach(x),)
    out = tree_map(lambda t: t.float() if isinstance(t, Tensor) else t, out)
    loss = loss_fn(out, y, *taught)
    loss.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_(params, grad_clip)
    if per_step:
        out = out.mean(0)
    return loss.detach(), tree_map(lambda t: t.detach() if isinstance(t, Tensor) else t, out)
