"""The engine's training step for your own loop: one call.

    step = make_step(model, optimizer)                 # cross-entropy unless loss_fn is given
    for x, y in loader:
        loss = step(x, y)                              # forward, loss, backward, clipping, optimizer.step()

On CUDA (`cuda_graph="auto"`), forward, loss, backward and clipping replay as one CUDA graph
(`GraphedStep`, the path `run.cuda_graph=true` takes; re-captured when a batch's shape changes), then
`optimizer.step()` runs eagerly. Elsewhere, or with `cuda_graph=False`, the same computation
(`step.forward_backward`) runs eagerly. The model must keep static shapes for the graph: no
data-dependent control flow in forward.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .cuda_graph import GraphedStep
from .step import forward_backward

__all__ = ["make_step"]


def make_step(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Optional[Callable[[Any, Any], Tensor]] = None,
              *, amp: Optional[torch.dtype] = None, grad_clip: Optional[float] = None,
              cuda_graph: Union[str, bool] = "auto") -> Callable[[Tensor, Any], Tensor]:
    """`step(x, y) -> loss` (detached) that trains `model` one step with `optimizer`.

    Args:
        loss_fn: `(output, target) -> loss` (default: cross-entropy on logits).
        amp: autocast dtype (e.g. torch.bfloat16) or None for float32.
        grad_clip: clip the gradients' global norm to this value.
        cuda_graph: "auto" (a graph when the model is on CUDA; eager, with a one-line note, if the capture
            fails), True (required: an error elsewhere) or False.
    """
    if cuda_graph not in ("auto", True, False):
        raise ConfigError(f"cuda_graph must be 'auto', True or False, got {cuda_graph!r}")
    loss_fn = loss_fn or F.cross_entropy
    params = [p for p in model.parameters() if p.requires_grad]
    on_cuda = bool(params) and params[0].device.type == "cuda"
    if cuda_graph is True and not on_cuda:
        raise ConfigError("cuda_graph=True needs the model on a CUDA device; use cuda_graph='auto' or False")
    graphed = GraphedStep(model, loss_fn, amp, grad_clip, fallback=cuda_graph == "auto") if on_cuda and cuda_graph else None

    def step(x: Tensor, y: Any) -> Tensor:
        model.train()
        if graphed is not None:
            loss, _ = graphed(x, y)  # the gradients stay in the graph's static .grad tensors
        else:
            optimizer.zero_grad(set_to_none=True)
            loss, _ = forward_backward(model, x, y, loss_fn, amp, grad_clip, params)
        optimizer.step()
        return loss

    step.graphed = graphed is not None  # type: ignore[attr-defined]
    return step
