"""Official weights in: the state dicts of the official Spikformer code (CIFAR and ImageNet layouts), of
the official Spike-driven Transformer (SDT v1), of the official QKFormer (ImageNet layout) and of
SpikingJelly 2.0's `Spikformer`, mapped onto ours.

    create_model("spikformer_4_384", num_classes=10, checkpoint="model_best.pth.tar")  # source guessed
    spikeformers convert model_best.pth.tar out_dir --from spikformer       # -> a save_pretrained folder (hub.py)

Files are read with `torch.load(weights_only=True)` (no code is unpickled; the `argparse.Namespace` of
the training arguments that timm checkpoints carry is the one plain class allowed), and the weights are
taken from `state_dict`, `model` or the top level, with DDP's `module.` prefixes removed. Missing or
unexpected keys and shape mismatches come back as one readable error.

Name rules (official -> ours):
- Spikformer: `patch_embed.proj_conv{,1,2,3}` / `proj_bn{,1,2,3}` -> `patch_embed.stages.{0..3}.conv/bn`,
  `rpe_conv/rpe_bn` -> `patch_embed.rpe.conv/bn`, `block.i.attn.{q,k,v,proj}_{linear,conv}` and `_bn`
  -> `blocks.i.attn.{q,k,v,proj}.linear/bn` (1x1 conv kernels squeezed), `block.i.mlp.fc{1,2}_*` ->
  `blocks.i.mlp.fc{1,2}.*`, `head` -> `head.fc`. The official Blocks' LayerNorms (`norm1`, `norm2`) are
  built but never used by the official forward: they are ignored.
- SDT: the same names (its Q/K/V/projection and MLP are 1x1 Conv2d), plus `block.i.attn.talking_heads`.
- QKFormer: `patch_embed1.proj{,1,2}_*` -> `patch_embeds.0.stages.{0,1,2}.*`, `patch_embed{2,3}.proj{3,4}_*`
  -> `patch_embeds.{1,2}.stages.{0,1}.*`, `patch_embedN.proj_res_*` -> `patch_embeds.N-1.shortcut.*`,
  `stageS.j.{tssa,attn}.{q,k,v,proj}_conv/_bn` -> `stages.S-1.j.attn.*.linear/bn`, `stageS.j.mlp.*` ->
  `stages.S-1.j.mlp.*`. Its stage-3 projection LIF runs over T*B samples in the official code (membrane
  leaks across a batch, `docs/models.md`); ours is per sample, so a batch's outputs can differ slightly.
- SpikingJelly 2.0's `spikformer_cifar10`: `sj_to_ours` below (its fused QKV conv split in three; its bias-free
  layers get zero biases, which a following BatchNorm makes irrelevant).

"""
from __future__ import annotations

import argparse
import os
import re
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from ..errors import ConfigError

__all__ = ["SOURCES", "read_state_dict", "convert_state_dict", "guess_source", "load_official", "sj_to_ours",
           "unmapped_parameters"]

SOURCES = ("spikformer", "sdt", "qkformer", "spikingjelly")

_SPIKFORMER_RULES: List[Tuple[str, str]] = [
    (r"patch_embed\.proj_conv\.(.+)", r"patch_embed.stages.0.conv.\1"),
    (r"patch_embed\.proj_bn\.(.+)", r"patch_embed.stages.0.bn.\1"),
    (r"patch_embed\.proj_conv(\d)\.(.+)", r"patch_embed.stages.\1.conv.\2"),
    (r"patch_embed\.proj_bn(\d)\.(.+)", r"patch_embed.stages.\1.bn.\2"),
    (r"patch_embed\.rpe_(conv|bn)\.(.+)", r"patch_embed.rpe.\1.\2"),
    (r"block\.(\d+)\.attn\.(q|k|v|proj)_(?:linear|conv)\.(.+)", r"blocks.\1.attn.\2.linear.\3"),
    (r"block\.(\d+)\.attn\.(q|k|v|proj)_bn\.(.+)", r"blocks.\1.attn.\2.bn.\3"),
    (r"block\.(\d+)\.mlp\.(fc1|fc2)_(?:linear|conv)\.(.+)", r"blocks.\1.mlp.\2.linear.\3"),
    (r"block\.(\d+)\.mlp\.(fc1|fc2)_bn\.(.+)", r"blocks.\1.mlp.\2.bn.\3"),
    (r"block\.(\d+)\.attn\.talking_heads\.weight", r"blocks.\1.attn.talking_heads.weight"),  # SDT
    (r"head\.(weight|bias)", r"head.fc.\1"),
]
_SPIKFORMER_IGNORED = re.compile(r"block\.\d+\.norm[12]\.(weight|bias)")


def _qk_stem(m: "re.Match") -> str:
    pe, proj, part, rest = int(m.group(1)), m.group(2), m.group(3), m.group(4)
    if proj == "_res":
        return f"patch_embeds.{pe - 1}.shortcut.{part}.{rest}"
    n = int(proj or 0)
    return f"patch_embeds.{pe - 1}.stages.{n if pe == 1 else n - 3}.{part}.{rest}"


_QKFORMER_RULES: List[Tuple[str, object]] = [
    (r"patch_embed(\d)\.proj(\d?|_res)_(conv|bn)\.(.+)", _qk_stem),
    (r"stage(\d)\.(\d+)\.(?:tssa|attn)\.(q|k|v|proj)_(?:conv|linear)\.(.+)",
     lambda m: f"stages.{int(m.group(1)) - 1}.{m.group(2)}.attn.{m.group(3)}.linear.{m.group(4)}"),
    (r"stage(\d)\.(\d+)\.(?:tssa|attn)\.(q|k|v|proj)_bn\.(.+)",
     lambda m: f"stages.{int(m.group(1)) - 1}.{m.group(2)}.attn.{m.group(3)}.bn.{m.group(4)}"),
    (r"stage(\d)\.(\d+)\.mlp\.(fc1|fc2)_(?:conv|linear)\.(.+)",
     lambda m: f"stages.{int(m.group(1)) - 1}.{m.group(2)}.mlp.{m.group(3)}.linear.{m.group(4)}"),
    (r"stage(\d)\.(\d+)\.mlp\.(fc1|fc2)_bn\.(.+)",
     lambda m: f"stages.{int(m.group(1)) - 1}.{m.group(2)}.mlp.{m.group(3)}.bn.{m.group(4)}"),
    (r"head\.(weight|bias)", r"head.fc.\1"),
]


def read_state_dict(path: str) -> Dict[str, Tensor]:
    """The weights in a checkpoint file, loaded without unpickling code."""
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: no such checkpoint file")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - an unpickling refusal or a corrupt file: one line either way
        raise ConfigError(f"{path}: not a loadable weights file ({str(e).splitlines()[0][:200]}); save only the "
                          f"state dict in its own environment: torch.save(model.state_dict(), 'weights.pth')") from None
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ConfigError(f"{path}: holds no state dict (a dict of tensors, or one under 'state_dict'/'model')")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def _renamed(src: Dict[str, Tensor], ours: Dict[str, Tensor], rules, ignored=None) -> Dict[str, Tensor]:
    """Rename by the first matching rule, reshape 1x1 kernels to our Linear weights, report what does not fit."""
    out, unexpected, shapes = {}, [], []
    for k, v in src.items():
        if ignored is not None and ignored.fullmatch(k):
            continue
        for pat, rep in rules:
            if re.fullmatch(pat, k):
                dst = re.sub(pat, rep, k)
                break
        else:
            unexpected.append(k)
            continue
        if dst not in ours:
            unexpected.append(k)
        elif v.shape != ours[dst].shape and v.numel() == ours[dst].numel() and v.dim() > ours[dst].dim():
            out[dst] = v.reshape(ours[dst].shape)  # a 1x1 conv kernel as our Linear weight
        elif v.shape != ours[dst].shape:
            shapes.append(f"{k} {tuple(v.shape)} -> {dst} {tuple(ours[dst].shape)}")
        else:
            out[dst] = v
    missing = [k for k in ours if k not in out]
    _raise_if(missing, unexpected, shapes)
    return out


def _raise_if(missing: List[str], unexpected: List[str], shapes: List[str]) -> None:
    parts = []
    for what, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
        if keys:
            parts.append(f"{what} ({len(keys)}): {', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''}")
    if parts:
        raise ConfigError("the checkpoint does not fit the model: " + "; ".join(parts))


def _spikformer_to_ours(src: Dict[str, Tensor], ours: Dict[str, Tensor]) -> Dict[str, Tensor]:
    return _renamed(src, ours, _SPIKFORMER_RULES, _SPIKFORMER_IGNORED)


def _qkformer_to_ours(src: Dict[str, Tensor], ours: Dict[str, Tensor]) -> Dict[str, Tensor]:
    return _renamed(src, ours, _QKFORMER_RULES)


def _spikingjelly_to_ours(src: Dict[str, Tensor], ours: Dict[str, Tensor]) -> Dict[str, Tensor]:
    try:
        return sj_to_ours(src, ours)
    except KeyError as e:
        raise ConfigError(f"the checkpoint does not fit the model: {e.args[0] if e.args else e}") from None


def guess_source(src: Dict[str, Tensor]) -> str:
    """Which official code wrote a state dict, from its names."""
    if any(k.startswith("patch_embed.stages.") and "conv_bn" in k for k in src):
        return "spikingjelly"
    if any(k.startswith("patch_embed1.") for k in src):
        return "qkformer"
    if any(k.endswith("attn.talking_heads.weight") for k in src):
        return "sdt"
    if any(k.startswith("patch_embed.proj_conv") for k in src):
        return "spikformer"
    raise ConfigError("cannot tell which code wrote this checkpoint (known: "
                      f"{', '.join(SOURCES)}); pass its source")


def convert_state_dict(src: Dict[str, Tensor], model: nn.Module, source: Optional[str] = None) -> Dict[str, Tensor]:
    """`src` (official names) as a state dict of `model`."""
    source = source or guess_source(src)
    if source not in SOURCES:
        raise ConfigError(f"unknown checkpoint source {source!r}; known: {', '.join(SOURCES)}")
    ours = model.state_dict()
    mapping = {"spikingjelly": _spikingjelly_to_ours, "qkformer": _qkformer_to_ours}.get(source, _spikformer_to_ours)
    mapped = mapping(src, ours)
    return {k: v.to(ours[k].dtype) for k, v in mapped.items()}


def load_official(model: nn.Module, path: str, source: Optional[str] = None) -> nn.Module:
    """Load an official checkpoint file into `model` (in place); returns the model."""
    model.load_state_dict(convert_state_dict(read_state_dict(path), model, source))
    return model


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
