"""Spikformer (Zhou et al., ICLR 2023, arXiv 2209.15425; code ZK-Zhou/spikformer).

    X0  = SPS(I)                               tokens [T, B, N, D] (spike + RPE spike: values {0,1,2})
    X'l = Attention(X_{l-1}) + X_{l-1}         spike residuals: block outputs are small integers
    Xl  = MLP(X'l) + X'l
    Y   = Linear(mean_tokens(XL)), averaged over T

Sizes follow the paper (the registry's published parameter counts are reproduced, docs/models.md):
CIFAR variants use Linear Q/K/V with bias and pooling "0011" (32 -> 8x8 tokens); ImageNet variants use
bias-free Q/K/V, pooling "1111" (224 -> 14x14 tokens) and 1000 classes. `mlp="emsp"` with
`attention="semm"` gives Spikformer + SEMM (Zhou et al., NeurIPS 2024), in STEP's reimplementation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from torch import Tensor, nn

from ..attention.base import create_attention
from ..encoding import create_encoder
from ..layers import SPS, ClassifierHead, check_pooling, create_mlp
from ..neurons.quant import quantize_levels
from ..neurons.registry import neuron_factory
from ._builder import apply_twin, build_config, encoded_input, token_backbone_features
from .registry import register_model

__all__ = ["SpikformerConfig", "Spikformer", "SpikformerBlock"]


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
