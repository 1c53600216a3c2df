"""SpikingJelly 2.0, the named peer of the benchmarks: import with a clear message, neuron backend
selection, and the weight mapping from its `spikformer_cifar10` to our `spikformer_4_384`.

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

__all__ = ["import_spikingjelly", "set_neuron_backend", "neuron_backend", "sj_to_ours", "match_pool_order",
           "unmapped_parameters", "SJ_MISSING"]

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


# ------------------------------------------------------------------------------------ weight mapping
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def sj_to_ours(sj_state: Dict[str, Tensor], our_state: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Our `spikformer_4_384` state dict holding SpikingJelly `spikformer_cifar10` weights.

    `our_state` gives the target keys and shapes; keys SpikingJelly has no counterpart for (the
    Linear biases) come back as zeros. Raises KeyError naming any key left unmapped on either side.
    """
    out: Dict[str, Tensor] = {}
    used = set()

    def take(src: str, dst: str, fn=lambda t: t) -> None:
        out[dst] = fn(sj_state[src]).clone()
        used.add(src)

    n_stages = sum(1 for k in sj_state if re.fullmatch(r"patch_embed\.stages\.\d+\.conv_bn\.block\.0\.weight", k))
    for i in range(n_stages):
        take(f"patch_embed.stages.{i}.conv_bn.block.0.weight", f"patch_embed.stages.{i}.conv.weight")
        for p in _BN:
            take(f"patch_embed.stages.{i}.conv_bn.block.1.{p}", f"patch_embed.stages.{i}.bn.{p}")
    take("patch_embed.positional_encoding.conv_bn.block.0.weight", "patch_embed.rpe.conv.weight")
    for p in _BN:
        take(f"patch_embed.positional_encoding.conv_bn.block.1.{p}", f"patch_embed.rpe.bn.{p}")
    blocks = sorted({int(m.group(1)) for k in sj_state for m in [re.match(r"blocks\.(\d+)\.", k)] if m})
    for b in blocks:
        pre, dst = f"blocks.{b}.attn", f"blocks.{b}.attn"
        w = sj_state[f"{pre}.qkv_conv_bn.0.weight"].squeeze(-1)  # [3D, D, 1] -> [3D, D]
        D = w.shape[1]
        for j, name in enumerate("qkv"):  # rows q | k | v, each head-major (h * d + i), as ours
            out[f"{dst}.{name}.linear.weight"] = w[j * D:(j + 1) * D].clone()
            for p in _BN:
                t = sj_state[f"{pre}.qkv_conv_bn.1.{p}"]
                out[f"{dst}.{name}.bn.{p}"] = (t if t.dim() == 0 else t[j * D:(j + 1) * D]).clone()
        used.update(f"{pre}.qkv_conv_bn.{s}" for s in ("0.weight", *(f"1.{p}" for p in _BN)))
        take(f"{pre}.proj_conv_bn.0.weight", f"{dst}.proj.linear.weight", lambda t: t.squeeze(-1))
        for p in _BN:
            take(f"{pre}.proj_conv_bn.1.{p}", f"{dst}.proj.bn.{p}")
        for fc in ("fc1", "fc2"):
            take(f"blocks.{b}.mlp.{fc}.0.weight", f"blocks.{b}.mlp.{fc}.linear.weight", lambda t: t.squeeze(-1))
            for p in _BN:
                take(f"blocks.{b}.mlp.{fc}.1.{p}", f"blocks.{b}.mlp.{fc}.bn.{p}")
    take("head.weight", "head.fc.weight")
    take("head.bias", "head.fc.bias")
    for k in unmapped_parameters(our_state):
        out[k] = torch.zeros_like(our_state[k])
    left_sj = sorted(set(sj_state) - used)
    left_ours = sorted(set(our_state) - set(out))
    if left_sj or left_ours:
        raise KeyError(f"unmapped keys: SpikingJelly {left_sj[:5]}, ours {left_ours[:5]}")
    for k, v in out.items():
        if v.shape != our_state[k].shape:
            raise KeyError(f"{k}: shape {tuple(v.shape)} from SpikingJelly, ours {tuple(our_state[k].shape)}")
    return out


def unmapped_parameters(our_state: Dict[str, Tensor]) -> List[str]:
    """Our keys with no SpikingJelly counterpart: the Linear biases in front of a BatchNorm."""
    return [k for k in our_state if k.endswith(".linear.bias")]


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
