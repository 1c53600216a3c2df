"""What every model family shares: building a config from a variant's sizes and the user's overrides (typed,
checked), the ANN/QANN twin of a config, and the input checks and feature maps of image backbones.
Private to `models/` (timm's `_builder.py`): a family imports it, nothing outside the package does.
"""
from __future__ import annotations

import math
import typing
from dataclasses import fields
from typing import Any, Dict, List

import yaml
from torch import Tensor, nn

from ..neurons.quant import quantize_levels

__all__ = ["TWINS", "check_image_input", "encoded_input", "token_backbone_features", "apply_twin", "build_config",
           "check_sizes"]

#: what `twin=` may ask for: the dense ANN twin, the quantized one, and the quantized one that keeps the
#: spiking attention's product form (the QANN that converts exactly to a spiking network: docs/conversion.md)
TWINS = ("ann", "qann", "qann_sa")


def check_image_input(model_name: str, x: Tensor, in_chans: int, img_size: int) -> None:
    expect = f"[B, {in_chans}, {img_size}, {img_size}] or [T, B, {in_chans}, {img_size}, {img_size}]"
    if not hasattr(x, "shape") or x.dim() not in (4, 5) or tuple(x.shape[-3:]) != (in_chans, img_size, img_size):
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise ValueError(f"{model_name} expects images {expect}, got shape {shape}")


def encoded_input(model: nn.Module, x: Tensor, family: str) -> Tensor:
    """`x` checked against the model's config; a static batch [B, C, H, W] encoded to [T, B, C, H, W]."""
    check_image_input(getattr(model, "model_name", family), x, model.cfg.in_chans, model.cfg.img_size)
    return model.encoder(x) if x.dim() == 4 else x


def token_backbone_features(model: nn.Module, x: Tensor, family: str) -> List[Tensor]:
    """Feature maps of a patch embedding + token blocks backbone (Spikformer, SDT): each embedding stage's
    output, then the last block's tokens [T, B, N, D] on their grid as [T, B, D, h, w]."""
    maps: List[Tensor] = []
    x = model.patch_embed(encoded_input(model, x, family), maps)
    for blk in model.blocks:
        x = blk(x)
    return maps + [x.transpose(2, 3).unflatten(3, maps[-1].shape[-2:])]


def apply_twin(cfg) -> None:
    """Turn a spiking config into its ANN twin in place: same layout, ReLU, softmax attention, T = 1.
    "qann": the same with quantized ReLUs of ceil(log2(L + 1)) bits, L the spikes a neuron may emit over
    the run (T, or T x D for integer neurons), learned step size (`neurons/quant.py`).

    Every config field named `attention` or `*_attention` (QKFormer's `token_attention`) becomes
    "softmax", and its `*_opts` are cleared. Parameter names and shapes then equal the spiking model's
    except: neuron parameters (PLIF `w`, learnable ternary amplitudes) and SDSA's unused talking-heads
    conv exist only in the spiking model; in QKFormer's Q-K stages the twin adds the V projection
    (`attn.v`) that softmax needs and Q-K attention lacks (tests/test_models_zoo.py checks this list).
    """
    if cfg.twin is None:
        return
    if cfg.twin not in TWINS:
        raise ValueError(f"unknown twin {cfg.twin!r}; valid twins: {', '.join(TWINS)}")
    if cfg.twin in ("qann", "qann_sa"):
        levels = cfg.T * (int(cfg.neuron_opts.get("max_spikes", 4)) if cfg.neuron == "ilif" else 1)
        cfg.neuron, cfg.neuron_opts = "quant", {"bits": quantize_levels(levels)}
    else:
        cfg.neuron, cfg.neuron_opts = "relu", {}
    for f in fields(cfg) if cfg.twin != "qann_sa" else ():
        if f.name == "attention" or f.name.endswith("_attention"):
            setattr(cfg, f.name, "softmax")
            setattr(cfg, f.name + "_opts", {})
    cfg.T, cfg.encoder = 1, "direct"


def build_config(cls, defaults: Dict[str, Any], overrides: Dict[str, Any], family: str):
    """A family config from a variant's sizes and the user's overrides; unknown keys are errors.

    Command-line values arrive as text and are read by the field's declared type, so that
    `model.pooling=0011` stays the string "0011" while `model.dim=256` becomes an int.
    """
    hints = typing.get_type_hints(cls)
    bad = sorted(set(overrides) - set(hints))
    if bad:
        raise ValueError(f"{family} got unknown option(s) {', '.join(map(repr, bad))}; valid options: {', '.join(sorted(hints))}")
    merged = dict(defaults)
    for k, v in overrides.items():
        if v is not None:
            merged[k] = _typed(family, k, v, hints[k])
    cfg = cls(**merged)
    check_sizes(cfg, family)
    return cfg


#: sizes every family shares, by field name, and their bounds, checked before anything is built. The upper
#: bounds lie far beyond any trainable model (memory refuses much less, `footprint.py`); they keep a typo
#: such as depth=10**9 from building modules for hours or sizes from overflowing torch's 64-bit counts.
_WIDTH, _LENGTH = (1, 1 << 24), (1, 1 << 20)
_SIZES = {"dim": _WIDTH, "in_chans": _WIDTH, "num_classes": _WIDTH, "num_heads": _WIDTH, "in_features": _WIDTH,
          "vocab_size": _WIDTH, "head_dim": _WIDTH, "fine_dim": (0, 1 << 24), "depth": (1, 1024),
          "T": _LENGTH, "seq_len": _LENGTH, "block_size": _LENGTH, "tokens": (0, 1 << 20), "img_size": (1, 1 << 16),
          "kernel_size": (1, 1 << 16)}


def check_sizes(cfg, family: str) -> None:
    """One-line errors for sizes no model can have (a negative depth built a model with no blocks; a negative
    width failed deep inside a layer): counts in their bounds, widths divisible by the heads, the MLP ratio
    > 0, weight bits in 2..16."""
    names = {f.name for f in fields(cfg)}
    for key, (low, high) in _SIZES.items():
        v = getattr(cfg, key, None) if key in names else None
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high):
            raise ValueError(f"{family} option {key!r} must be an integer >= {low}" +
                             (f" (at most {high:,})" if isinstance(v, int) and v > high else "") + f", got {v!r}")
    depths = getattr(cfg, "depths", None) if "depths" in names else None
    if isinstance(depths, (list, tuple)) and any(isinstance(d, int) and d > _SIZES["depth"][1] for d in depths):
        raise ValueError(f"{family} option 'depths' holds blocks per stage of at most {_SIZES['depth'][1]}, "
                         f"got {tuple(depths)!r}")
    if "mlp_ratio" in names:
        r = cfg.mlp_ratio
        if not isinstance(r, (int, float)) or isinstance(r, bool) or not math.isfinite(r) or r <= 0 \
                or not 1 <= int(getattr(cfg, "dim", 1) * r) <= _WIDTH[1]:
            raise ValueError(f"{family} option 'mlp_ratio' must be a number > 0 (a hidden width of 1 to "
                             f"{_WIDTH[1]:,}), got {r!r}")
    if "dim" in names and "num_heads" in names and cfg.dim % cfg.num_heads:
        raise ValueError(f"{family} dim {cfg.dim} must be a multiple of num_heads {cfg.num_heads}")
    bits = getattr(cfg, "weight_bits", None)
    if bits is not None and (not isinstance(bits, int) or isinstance(bits, bool) or not 2 <= bits <= 16):
        raise ValueError(f"{family} option 'weight_bits' must be an integer in 2..16 or null, got {bits!r}")


def _typed(family: str, key: str, value: Any, tp: Any) -> Any:
    """`value` as the field type `tp` (str, int, float, bool, dict, or Optional of one)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    base = args[0] if typing.get_origin(tp) is typing.Union and len(args) == 1 else tp
    base = typing.get_origin(base) or base
    if base is str:
        if not isinstance(value, str):
            raise ValueError(f"{family} option {key!r} must be a string, got {value!r} (quote it in YAML)")
        return value
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ValueError(f"{family} option {key!r}: cannot read {value!r}") from None
    ok = {bool: isinstance(value, bool), int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, (int, float)) and not isinstance(value, bool), dict: isinstance(value, dict)}
    if base in ok and not ok[base]:
        raise ValueError(f"{family} option {key!r} must be {base.__name__}, got {value!r}")
    return float(value) if base is float else value
