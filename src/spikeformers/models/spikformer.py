"""Spikformer (Zhou et al., ICLR 2023, arXiv 2209.15425; code ZK-Zhou/spikformer).

    X0  = SPS(I)                               tokens [T, B, N, D] (spike + RPE spike: values {0,1,2})
    X'l = Attention(X_{l-1}) + X_{l-1}         spike residuals: block outputs are small integers
    Xl  = MLP(X'l) + X'l
    Y   = Linear(mean_tokens(XL)), averaged over T

Sizes follow the paper (REFERENCES.md section 11 reproduces the published parameter counts):
CIFAR variants use Linear Q/K/V with bias and pooling "0011" (32 -> 8x8 tokens); ImageNet variants use
bias-free Q/K/V, pooling "1111" (224 -> 14x14 tokens) and 1000 classes. `mlp="emsp"` with
`attention="semm"` gives Spikformer + SEMM (Zhou et al., NeurIPS 2024), in STEP's reimplementation.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional

import yaml
from torch import Tensor, nn

from ..attention.base import create_attention
from ..encoding import create_encoder
from ..layers import SPS, ClassifierHead, check_pooling, create_mlp
from ..neurons.quant import quantize_levels
from ..neurons.registry import neuron_factory
from .registry import register_model

#: what `twin=` may ask for: the dense ANN twin, the quantized one, and the quantized one that keeps the
#: spiking attention's product form (the QANN that converts exactly to a spiking network: docs/conversion.md)
TWINS = ("ann", "qann", "qann_sa")

__all__ = ["TWINS", "SpikformerConfig", "Spikformer", "SpikformerBlock", "check_image_input", "encoded_input",
           "token_backbone_features", "apply_twin", "build_config"]


@dataclass
class SpikformerConfig:
    img_size: int = 32            # square input side
    in_chans: int = 3
    num_classes: int = 10
    dim: int = 384                # D (embedding width)
    depth: int = 4                # number of blocks
    num_heads: int = 12
    mlp_ratio: float = 4.0        # MLP hidden = mlp_ratio * D
    T: int = 4                    # time steps for static input (temporal input brings its own T)
    pooling: str = "0011"         # SPS stages followed by a 2x max-pool
    qkv_bias: bool = True         # bias in the Q/K/V Linear (CIFAR code) or not (ImageNet code)
    attention: str = "ssa"        # attention registry name
    attention_opts: Dict[str, Any] = field(default_factory=dict)
    mlp: str = "spiking"          # "spiking" (Spikformer) | "emsp" (SEMM's experts-mixture MLP, needs the token grid)
    neuron: str = "lif"           # neuron registry name, used everywhere a spiking neuron sits
    neuron_opts: Dict[str, Any] = field(default_factory=dict)
    encoder: str = "direct"       # how a static image becomes [T, B, C, H, W]
    twin: Optional[str] = None    # "ann" | "qann" (quantized ReLUs): ReLU neurons, softmax attention, T = 1
    weight_bits: Optional[int] = None  # quantize every Linear/Conv weight to this many bits (None: float)


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


class SpikformerBlock(nn.Module):
    """`grid`: the token grid side (the patch embedding's), needed by mlp="emsp"."""

    def __init__(self, cfg: SpikformerConfig, grid: Optional[int] = None):
        super().__init__()
        neuron = neuron_factory(cfg.neuron, **cfg.neuron_opts)
        self.attn = create_attention(cfg.attention, cfg.dim, cfg.num_heads, neuron=cfg.neuron,
                                     neuron_opts=cfg.neuron_opts, qkv_bias=cfg.qkv_bias, **cfg.attention_opts)
        self.mlp = create_mlp(cfg.mlp, cfg.dim, int(cfg.dim * cfg.mlp_ratio), neuron, grid=grid)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class Spikformer(nn.Module):
    """Input `[B, C, H, W]` (encoded inside) or `[T, B, C, H, W]`; output logits `[B, classes]`
    (or per-step `[T, B, classes]` with `per_step=True`, for TET-style losses)."""

    def __init__(self, cfg: SpikformerConfig):
        super().__init__()
        apply_twin(cfg)
        check_pooling(cfg.pooling, cfg.img_size)
        self.cfg = cfg
        neuron = neuron_factory(cfg.neuron, **cfg.neuron_opts)
        self.encoder = create_encoder(cfg.encoder, cfg.T)
        self.patch_embed = SPS(cfg.in_chans, cfg.dim, cfg.img_size, cfg.pooling, neuron)
        self.blocks = nn.ModuleList(SpikformerBlock(cfg, self.patch_embed.grid) for _ in range(cfg.depth))
        self.head = ClassifierHead(cfg.dim, cfg.num_classes)

    def forward_features(self, x: Tensor) -> List[Tensor]:
        """Every feature map [T, B, C, h, w]: the four SPS stages' outputs, then the last block's tokens
        on their grid (`models/features.py` selects and describes them)."""
        return token_backbone_features(self, x, "Spikformer")

    def forward(self, x: Tensor, per_step: bool = False) -> Tensor:
        x = self.patch_embed(encoded_input(self, x, "Spikformer"))  # [T, B, N, D]
        for blk in self.blocks:
            x = blk(x)
        logits = self.head(x)  # [T, B, classes]
        return logits if per_step else logits.mean(0)


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
    return cls(**merged)


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


_CIFAR = dict(img_size=32, in_chans=3, num_classes=10, pooling="0011", qkv_bias=True)
_IMAGENET = dict(img_size=224, in_chans=3, num_classes=1000, pooling="1111", qkv_bias=False)


def _spikformer(defaults: Dict[str, Any], overrides: Dict[str, Any]) -> Spikformer:
    return Spikformer(build_config(SpikformerConfig, defaults, overrides, "Spikformer"))


def _published(dataset: str, top1: float, params_m: Optional[float], source: str = "Zhou et al., ICLR 2023") -> Dict[str, Any]:
    return dict(dataset=dataset, top1=top1, params_m=params_m, source=source)


@register_model(family="spikformer", note="small default for the digits job")
def spikformer_tiny(**kw):
    return _spikformer(dict(img_size=8, in_chans=1, num_classes=10, dim=64, depth=1, num_heads=4, pooling="0001",
                            qkv_bias=True), kw)


@register_model(family="spikformer", published=_published("CIFAR-10", 95.19, 9.32))
def spikformer_4_384(**kw):
    return _spikformer(dict(_CIFAR, dim=384, depth=4, num_heads=12), kw)


@register_model(family="spikformer", published=_published("CIFAR-10", 93.94, 4.15))
def spikformer_4_256(**kw):
    return _spikformer(dict(_CIFAR, dim=256, depth=4, num_heads=8), kw)


@register_model(family="spikformer", published=_published("CIFAR-10", 94.80, 5.76))
def spikformer_2_384(**kw):
    return _spikformer(dict(_CIFAR, dim=384, depth=2, num_heads=12), kw)


@register_model(family="spikformer", published=_published("ImageNet", 70.24, 16.81))
def spikformer_8_384(**kw):
    return _spikformer(dict(_IMAGENET, dim=384, depth=8, num_heads=12), kw)


@register_model(family="spikformer", published=_published("ImageNet", 72.46, 23.37))
def spikformer_6_512(**kw):
    return _spikformer(dict(_IMAGENET, dim=512, depth=6, num_heads=8), kw)


@register_model(family="spikformer", published=_published("ImageNet", 73.38, 29.68))
def spikformer_8_512(**kw):
    return _spikformer(dict(_IMAGENET, dim=512, depth=8, num_heads=8), kw)


@register_model(family="spikformer", published=_published("ImageNet", 73.68, 36.01))
def spikformer_10_512(**kw):
    return _spikformer(dict(_IMAGENET, dim=512, depth=10, num_heads=8), kw)


@register_model(family="spikformer", published=_published("ImageNet", 74.81, 66.34))
def spikformer_8_768(**kw):
    return _spikformer(dict(_IMAGENET, dim=768, depth=8, num_heads=12), kw)


# Spikformer + SEMM (EMSA attention, EMSP MLP). Accuracies from the STEP zoo; no parameter count published.
_SEMM = dict(attention="semm", mlp="emsp")
_SEMM_SOURCE = "Zhou et al., NeurIPS 2024 (via STEP zoo)"


@register_model(family="spikformer", published=_published("CIFAR-10", 95.78, None, _SEMM_SOURCE))
def spikformer_semm_4_384(**kw):
    return _spikformer(dict(_CIFAR, dim=384, depth=4, num_heads=12, **_SEMM), kw)


@register_model(family="spikformer", published=_published("ImageNet", 75.93, None, _SEMM_SOURCE))
def spikformer_semm_8_512(**kw):
    return _spikformer(dict(_IMAGENET, dim=512, depth=8, num_heads=8, **_SEMM), kw)
