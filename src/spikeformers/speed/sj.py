"""SpikingJelly 2.0, the named peer of the benchmarks: import with a clear message, neuron backend
selection, and its model made comparable to ours (the weight mapping is `models/convert.py`'s `sj_to_ours`).

Differences between the two models, and how the equivalence check removes them:
- SpikingJelly's patch stem max-pools *before* the LIF of stages 3-4 (conv, BN, pool, LIF); ours
  follows the official Spikformer code (conv, BN, LIF, pool). `match_pool_order` moves its pools
  after the neurons; throughput is measured on the unmodified model.
- Its Q/K/V, projection and MLP layers are bias-free 1x1 Conv1d; ours are Linear with a bias (the
  official CIFAR code). A bias before a training-mode BatchNorm changes nothing (BN subtracts the
  batch mean), so the mapping sets ours to zero and the check freezes them.
- Its fused QKV conv + one BN over 3D channels == our three Linear + BN (BN is per channel).
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional

import torch
from torch import Tensor, nn

__all__ = ["import_spikingjelly", "set_neuron_backend", "neuron_backend", "match_pool_order", "sj_logits", "maybe",
           "SJ_MISSING"]

SJ_MISSING = ("SpikingJelly is not installed: this benchmark compares against spikingjelly 2.0 "
              "(pip install spikingjelly loguru, or carry their wheels). Skipping its rows.")


def import_spikingjelly():
    """`spikingjelly.activation_based` (neuron, functional, model.spikformer) or None when missing."""
    try:
        import spikingjelly.activation_based.functional  # noqa: F401
        import spikingjelly.activation_based.neuron  # noqa: F401
        from spikingjelly.activation_based import model as _model  # noqa: F401  (needs h5py)
        import spikingjelly.activation_based as ab
    except ImportError as e:
        print(f"{SJ_MISSING} ({e})")
        return None
    return ab


def _lif_selection():
    from spikingjelly._ops import lif

    return lif._selection


def set_neuron_backend(name: str) -> None:
    """Select SpikingJelly's CUDA LIF implementation: "auto" (its priority: native cuda, triton, torch),
    "cuda" (native, needs a source build), "triton" or "torch". Same effect as setting
    SJ_LIF_CUDA_IMPLEMENTATION before import."""
    sel = _lif_selection()
    if name not in ("auto", "cuda", "triton", "torch"):
        raise ValueError(f"unknown SpikingJelly backend {name!r}")
    sel._requested = name
    sel._selections.clear()
    sel._compiled_selections.clear()


def neuron_backend(device: torch.device, detail: bool = False):
    """The implementation SpikingJelly's LIF selected on `device` (after a first call); with `detail`,
    also {implementation: why unavailable} for the ones it skipped."""
    try:
        d = _lif_selection().diagnostics(device)
        name, unavailable = str(d["implementation"]), {k: str(v)[:200] for k, v in d["unavailable"].items()}
    except Exception as e:  # diagnostics is internal API: report rather than fail
        name, unavailable = f"unknown ({type(e).__name__}: {e})", {}
    return (name, unavailable) if detail else name


def match_pool_order(sj_model: nn.Module) -> nn.Module:
    """Move the max-pools of SpikingJelly's patch stem after the stage's LIF (our / the official
    order), in place. Returns the model."""
    from spikingjelly.activation_based import layer

    for stage in sj_model.patch_embed.stages:
        block = stage.conv_bn.block
        pools = [m for m in block if isinstance(m, nn.MaxPool2d)]
        if not pools:
            continue
        stage.conv_bn.block = layer.SeqToANNContainer(*[m for m in block if not isinstance(m, nn.MaxPool2d)])
        stage.neuron = nn.Sequential(stage.neuron, layer.SeqToANNContainer(*pools))
    return sj_model


def sj_logits(sj_model: nn.Module, x: Tensor, functional) -> Tensor:
    """SpikingJelly's logits averaged over time, with its neuron state reset first."""
    functional.reset_net(sj_model)
    return sj_model(x).mean(0)


def maybe(v: Optional[float]) -> str:
    return "n/a" if v is None else f"{v:.4g}"
