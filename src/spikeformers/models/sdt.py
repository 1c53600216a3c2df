"""Spike-driven Transformer (SDT; Yao et al., NeurIPS 2023, arXiv 2307.01694; code BICLab/Spike-Driven-Transformer).

Membrane shortcuts: every residual adds membrane potentials *before* a neuron, and every branch starts
with a neuron, so every Linear/Conv after the first conv reads binary spikes (tested with hooks):

    U0 = MS-SPS(I)                            membrane tokens [T, B, N, D] (real)
    U' = U + Attn(SN(U))                      attention built with out_neuron=False: ends in BN(Linear)
    U  = U' + MLP(U'),  MLP = SN -> BN(Linear D->4D) -> SN -> BN(Linear 4D->D)
    Y  = Linear(SN(mean_tokens(U_L))), averaged over T

Default attention `sdsa` (SDSA = Q * SN(SUM_tokens(K * V))); the published variants set
`talking_heads=True`, which registers the official code's unused Conv1d(h, h, 1) so parameter counts
match the published ones (docs/models.md). A2OS2A (Guo et al., CVPR 2025) keeps this backbone and swaps the
attention: `a2os2a_*` variants.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from torch import Tensor, nn

from ..attention.base import create_attention
from ..encoding import create_encoder
from ..layers import MSSPS, ClassifierHead, MembraneMLP, check_pooling
from ..neurons.registry import neuron_factory
from .registry import register_model
from ._builder import apply_twin, build_config, encoded_input, token_backbone_features

__all__ = ["SDTConfig", "SpikeDrivenTransformer", "SDTBlock"]


@dataclass
class SDTConfig:
    img_size: int = 32            # square input side
    in_chans: int = 3
    num_classes: int = 10
    dim: int = 512                # D (embedding width)
    depth: int = 2                # number of blocks
    num_heads: int = 8            # 8 in every official config
    mlp_ratio: float = 4.0        # MLP hidden = mlp_ratio * D
    T: int = 4                    # time steps for static input (temporal input brings its own T)
    pooling: str = "0011"         # MS-SPS stages followed by a 2x max-pool ("1111" on ImageNet)
    qkv_bias: bool = False        # Q/K/V are bias-free 1x1 convs in the official code
    attention: str = "sdsa"       # attention registry name (built with out_neuron=False)
    attention_opts: Dict[str, Any] = field(default_factory=dict)
    neuron: str = "lif"           # neuron registry name, used everywhere a spiking neuron sits
    neuron_opts: Dict[str, Any] = field(default_factory=dict)
    encoder: str = "direct"       # how a static image becomes [T, B, C, H, W]
    twin: Optional[str] = None    # "ann" | "qann" (quantized ReLUs): ReLU neurons, softmax attention, T = 1
    weight_bits: Optional[int] = None  # quantize every Linear/Conv weight to this many bits (None: float)


class SDTBlock(nn.Module):
    """Membrane-shortcut block on [T, B, N, D] membrane potentials."""

    def __init__(self, cfg: SDTConfig):
        super().__init__()
        neuron = neuron_factory(cfg.neuron, **cfg.neuron_opts)
        self.pre_neuron = neuron()  # the official `shortcut_lif`: the attention branch reads spikes
        self.attn = create_attention(cfg.attention, cfg.dim, cfg.num_heads, neuron=cfg.neuron, neuron_opts=cfg.neuron_opts,
                                     qkv_bias=cfg.qkv_bias, out_neuron=False, **cfg.attention_opts)
        self.mlp = MembraneMLP(cfg.dim, int(cfg.dim * cfg.mlp_ratio), neuron)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.pre_neuron(x))
        return x + self.mlp(x)


class SpikeDrivenTransformer(nn.Module):
    """Input `[B, C, H, W]` (encoded inside) or `[T, B, C, H, W]`; output logits `[B, classes]`
    (or per-step `[T, B, classes]` with `per_step=True`, for TET)."""

    def __init__(self, cfg: SDTConfig):
        super().__init__()
        apply_twin(cfg)
        check_pooling(cfg.pooling, cfg.img_size)
        self.cfg = cfg
        neuron = neuron_factory(cfg.neuron, **cfg.neuron_opts)
        self.encoder = create_encoder(cfg.encoder, cfg.T)
        self.patch_embed = MSSPS(cfg.in_chans, cfg.dim, cfg.img_size, cfg.pooling, neuron)
        self.blocks = nn.ModuleList(SDTBlock(cfg) for _ in range(cfg.depth))
        self.head = ClassifierHead(cfg.dim, cfg.num_classes, neuron=neuron())

    def forward_features(self, x: Tensor) -> List[Tensor]:
        """Every feature map [T, B, C, h, w]: the four MS-SPS stages' outputs (the last a membrane), then
        the last block's membrane tokens on their grid."""
        return token_backbone_features(self, x, "SpikeDrivenTransformer")

    def forward(self, x: Tensor, per_step: bool = False) -> Tensor:
        x = self.patch_embed(encoded_input(self, x, "SpikeDrivenTransformer"))  # [T, B, N, D] membrane
        for blk in self.blocks:
            x = blk(x)
        logits = self.head(x)  # [T, B, classes]
        return logits if per_step else logits.mean(0)


_CIFAR = dict(img_size=32, in_chans=3, num_classes=10, pooling="0011", num_heads=8)
_IMAGENET = dict(img_size=224, in_chans=3, num_classes=1000, pooling="1111", num_heads=8)
_SDSA = dict(attention="sdsa", attention_opts={"talking_heads": True})
_A2OS2A = dict(attention="a2os2a", attention_opts={})


def _sdt(defaults: Dict[str, Any], overrides: Dict[str, Any]) -> SpikeDrivenTransformer:
    if overrides.get("attention") not in (None, defaults.get("attention")) and "attention_opts" not in overrides:
        defaults = {**defaults, "attention_opts": {}}  # a variant's attention options belong to its attention
    return SpikeDrivenTransformer(build_config(SDTConfig, defaults, overrides, "SpikeDrivenTransformer"))


def _published(dataset: str, top1: float, params_m: float, source: str = "Yao et al., NeurIPS 2023",
               **extra: Any) -> Dict[str, Any]:
    return dict(dataset=dataset, top1=top1, params_m=params_m, source=source, **extra)


@register_model(family="sdt", note="small SDT (8x8 grayscale) for tests and quick runs")
def sdt_tiny(**kw):
    return _sdt(dict(_SDSA, img_size=8, in_chans=1, num_classes=10, dim=64, depth=1, num_heads=4, pooling="0001"), kw)


@register_model(family="sdt", note="SDT for CIFAR10-DVS (official conf/cifar10-dvs/2_256: 64 px, T = 10, Erode "
                                   "max-pools in SDSA); the paper reports 80.0 % at T = 16")
def sdt_2_256_dvs(**kw):
    return _sdt(dict(img_size=64, in_chans=2, num_classes=10, dim=256, depth=2, num_heads=8, pooling="0011", T=10,
                     attention="sdsa", attention_opts={"talking_heads": True, "erode": True}), kw)


@register_model(family="sdt", published=_published("CIFAR-10", 95.60, 10.23))
def sdt_2_512(**kw):
    return _sdt(dict(_CIFAR, **_SDSA, dim=512, depth=2), kw)


@register_model(family="sdt", published=_published("ImageNet", 72.28, 16.81))
def sdt_8_384(**kw):
    return _sdt(dict(_IMAGENET, **_SDSA, dim=384, depth=8), kw)


@register_model(family="sdt", published=_published("ImageNet", 74.11, 23.37))
def sdt_6_512(**kw):
    return _sdt(dict(_IMAGENET, **_SDSA, dim=512, depth=6), kw)


@register_model(family="sdt", published=_published("ImageNet", 74.57, 29.68))
def sdt_8_512(**kw):
    return _sdt(dict(_IMAGENET, **_SDSA, dim=512, depth=8), kw)


@register_model(family="sdt", published=_published("ImageNet", 74.66, 36.01))
def sdt_10_512(**kw):
    return _sdt(dict(_IMAGENET, **_SDSA, dim=512, depth=10), kw)


@register_model(family="sdt", published=_published("ImageNet", 76.32, 66.34, note="77.07 with 288 px inference"))
def sdt_8_768(**kw):
    return _sdt(dict(_IMAGENET, **_SDSA, dim=768, depth=8), kw)


# A2OS2A (Guo et al., CVPR 2025, arXiv 2503.00226): the SDT backbone with addition-only attention, T = 4.
_GUO = "Guo et al., CVPR 2025"


@register_model(family="sdt", published=_published("CIFAR-10", 96.42, 10.23, _GUO, note="CIFAR-100 79.90"))
def a2os2a_2_512(**kw):
    return _sdt(dict(_CIFAR, **_A2OS2A, dim=512, depth=2), kw)


@register_model(family="sdt", published=_published("ImageNet", 76.28, 29.68, _GUO))
def a2os2a_8_512(**kw):
    return _sdt(dict(_IMAGENET, **_A2OS2A, dim=512, depth=8), kw)


@register_model(family="sdt", published=_published("ImageNet", 78.66, 36.01, _GUO))
def a2os2a_10_512(**kw):
    return _sdt(dict(_IMAGENET, **_A2OS2A, dim=512, depth=10), kw)
