"""The baselines: the dense ANN twin and its quantized version (QANN).

The ANN twin has the same layout with ReLU neurons, softmax attention and T = 1
(`create_model(name, twin="ann")`). Its operations depend only on shapes, so it is counted on one
image of zeros, with untrained weights; `device="meta"` counts shapes only, without memory or
arithmetic (the first meta forward of a process pays a one-off import of a few seconds).

The fair baseline (Yan et al., arXiv 2409.08290; STEP) is that twin quantized to
ceil(log2(T + 1))-bit activations -- as much information per activation as T binary time steps --
and b-bit weights, costed with the same memory-aware model as the SNN.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional

import torch
from torch import nn

from .counter import OpCounts, count_ops
from .horowitz import Energy, dense_energy
from .lemaire import LemaireCosts, lemaire, qann_bits
from .stats import TensorStats
from ..models import create_model

__all__ = ["build_ann_twin", "count_twin", "ann_energy", "qann_energy"]


def build_ann_twin(model: nn.Module, device: Any = None) -> nn.Module:
    """`create_model(model.model_name, **model.model_args, twin="ann")`, on the model's device by default."""
    name = getattr(model, "model_name", None)
    if name is None:
        raise ValueError(f"{type(model).__name__} was not built by create_model (no model_name): pass its twin explicitly")
    args = {**getattr(model, "model_args", {}), "twin": "ann"}
    args.pop("conversion", None)  # a converted SNN's ANN twin is its source QANN's
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    with torch.device(device):
        return create_model(name, **args)


def count_twin(twin: nn.Module, x: Any) -> OpCounts:
    """Counts of the twin on one image of x's shape (shapes only: the meta device)."""
    if not hasattr(x, "shape"):
        raise ValueError("count_twin needs a tensor input")
    shape = tuple(x.shape)
    if len(shape) == 5:  # [T, B, C, H, W] temporal input: the twin sees one frame
        shape = shape[1:]
    xm = torch.empty((1, *shape[1:]), dtype=x.dtype, device="meta")
    try:
        twin_device = next(twin.parameters()).device
    except StopIteration:
        twin_device = torch.device("meta")
    if twin_device.type != "meta":
        xm = torch.zeros((1, *shape[1:]), dtype=x.dtype, device=twin_device)
    c = count_ops(twin, xm, batch_size=1)
    # the ANN's cost is its shapes: forget the values of the zero image (all of it dense, MAC)
    raw = [replace(l, operands={k: TensorStats(numel=s.numel, known=False) for k, s in l.operands.items()})
           for l in c.raw]
    return OpCounts.build(raw, c.T, c.batch_size, c.rules, None, c.model_name)


def ann_energy(twin_counts: OpCounts, preset: str = "fp32") -> Energy:
    """The dense ANN twin under the 45 nm model: every operation a MAC (fp32: 4.6 pJ each)."""
    return dense_energy(twin_counts, preset)


def qann_energy(twin_counts: OpCounts, T: int, weight_bits: int = 8, costs: Optional[LemaireCosts] = None) -> Energy:
    """The twin with ceil(log2(T+1))-bit activations and `weight_bits` weights, memory-aware model."""
    costs = replace(costs or LemaireCosts(), act_bits=qann_bits(T), weight_bits=weight_bits)
    return lemaire(twin_counts, costs, formal=True)
