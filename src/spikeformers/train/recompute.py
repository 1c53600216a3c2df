"""`run.memory=recompute`: keep less for backward by recomputing each unit of the model there.

The units are a model's patch embeddings and transformer blocks, found by name in every model of the zoo
(`patch_embed`, `patch_embeds.<i>` and `stages.<i>.<j>` in QKFormer, `blocks.<i>`), at any depth (a dense
model's `backbone.model.blocks.0`). A patch embedding with a `stage(i, x)` method (SPS, MS-SPS) is
recomputed stage by stage, since its stages hold most of the activations. In training, each unit runs
under `torch.utils.checkpoint` (non-reentrant): the forward keeps only the unit's inputs, and the backward
runs the unit again to get what it needs. Gradients are the default path's (the recomputation repeats
the same operations on the same inputs; the units draw no random numbers), and BatchNorm's running
statistics are updated once per step, as without it. Memory still grows with T (the inputs of every
unit, and one unit's activations during its backward), more slowly. Costs one more forward per step.

    spikeformers train RECIPE run.memory=recompute
    enable_recompute(model)       # Python, before make_step or your own loop
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any, Callable, List

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..errors import ConfigError
from ..neurons.homeostasis import Homeostatic

__all__ = ["enable_recompute", "recompute_segments"]

_SEGMENT = re.compile(r"(^|\.)(patch_embed|patch_embeds\.\d+|blocks\.\d+|stages\.\d+\.\d+)$")


def recompute_segments(model: nn.Module) -> List[str]:
    """Names of the modules `enable_recompute` checkpoints (outermost only), in definition order."""
    names: List[str] = []
    for name, m in model.named_modules():
        if _SEGMENT.search(name) and not any(name.startswith(outer + ".") for outer in names):
            names.append(name)
    return names


def enable_recompute(model: nn.Module) -> List[str]:
    """Checkpoint every segment of `model` in place (module docstring); returns their names. Parameter names,
    state dicts and evaluation are unchanged."""
    names = recompute_segments(model)
    if not names:
        raise ConfigError(f"run.memory=recompute: {type(model).__name__} has no patch embedding or blocks to "
                          f"recompute (units are named patch_embed, patch_embeds.<i>, blocks.<i> or stages.<i>.<j>)")
    modules = dict(model.named_modules())
    for name in names:
        seg = modules[name]
        for sub, m in seg.named_modules(prefix=name):
            if isinstance(m, Homeostatic):  # its threshold changes after the forward: a recomputation
                raise ConfigError(f"run.memory=recompute: {sub} is a homeostatic neuron, which changes its "
                                  f"threshold in the forward; train it with run.memory=default")
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats and m.momentum is None:
                raise ConfigError(f"run.memory=recompute: {sub} averages its statistics cumulatively "
                                  f"(momentum=None), which a recomputation would count twice")
        unit = "stage" if callable(getattr(seg, "stage", None)) else "forward"  # SPS: stage by stage
        if not isinstance(getattr(seg, unit), _Checkpointed):
            setattr(seg, unit, _Checkpointed(seg, getattr(seg, unit)))
    return names


class _Checkpointed:
    """A unit's forward (or stage) under non-reentrant checkpointing while it trains with gradients."""

    def __init__(self, module: nn.Module, forward: Callable[..., Any]):
        self.module, self.forward = module, forward

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not (self.module.training and torch.is_grad_enabled()):
            return self.forward(*args, **kwargs)
        ran = []

        def run(*a: Any, **k: Any) -> Any:
            if ran:  # the recomputation, inside backward: the forward already updated the running statistics
                with _running_stats_frozen(self.module):
                    return self.forward(*a, **k)
            ran.append(True)
            return self.forward(*a, **k)

        # no RNG state to restore (the units are deterministic), which also keeps the step capturable
        return checkpoint(run, *args, use_reentrant=False, preserve_rng_state=False, **kwargs)


@contextmanager
def _running_stats_frozen(module: nn.Module):
    """Within: the BatchNorm layers of `module` leave their running statistics and batch count as they are."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in bns]
    for m in bns:
        m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch
    try:
        yield
    finally:
        for m, (momentum, count) in zip(bns, saved):
            m.momentum = momentum
            m.num_batches_tracked.copy_(count)
