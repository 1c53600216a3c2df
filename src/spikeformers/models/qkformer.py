"""QKFormer, hierarchical spiking transformer (Zhou et al., NeurIPS 2024, arXiv 2403.16552; code zhouchenlin2096/QKFormer).

Three stages at widths D/4, D/2, D, each opened by a SPEDS patch embedding (grid halved between stages):

    X = SPEDS_stem(I);      stage 1: depths[0] blocks with `token_attention` (QKTA, `qk_token`)
    X = SPEDS_stage(X);     stage 2: depths[1] blocks with `token_attention`
    X = SPEDS_stage(X);     stage 3: depths[2] blocks with `attention` (Spikformer SSA: Q(K^T V) 0.125, attn SN 0.5)
    block: X = X + Attn(X); X = X + MLP(X)       spike residuals (values are small integers), MLP ratio 4
    Y = Linear(mean_tokens(X)), averaged over T

Overrides: `token_attention=` replaces the attention of stages 1-2, `attention=` that of stage 3
(`token_attention_opts` / `attention_opts` go with them). `embed="cifar"` keeps the full grid in
stage 1 (32x32 tokens on CIFAR), `embed="imagenet"` downsamples 4x first (224 -> 56x56).
HST-4-384 on CIFAR-10 has 6,706,234 parameters and HST-10-768 on ImageNet 64,962,760, as the official
training logs print.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from torch import Tensor, nn

from ..attention.base import create_attention
from ..encoding import create_encoder
from ..layers import ClassifierHead, SpikingMLP, speds_stage, speds_stem
from ..layers.speds import SPEDS_LAYOUTS
from ..neurons.registry import neuron_factory
from .registry import register_model
from ._builder import apply_twin, build_config, encoded_input

__all__ = ["QKFormerConfig", "QKFormer", "QKFormerBlock", "official_batch_quirk"]


@dataclass
class QKFormerConfig:
    img_size: int = 32            # square input side
    in_chans: int = 3
    num_classes: int = 10
    dim: int = 384                # D, the width of the last stage (the others run at D/4 and D/2)
    depths: Tuple[int, ...] = (1, 1, 2)  # blocks per stage (CIFAR 1-1-2; ImageNet 1-2-7; DVS, two stages: 1-1)
    num_heads: int = 8            # heads in every stage (CIFAR 8; ImageNet 6 / 8 / 12 for D 384 / 512 / 768)
    mlp_ratio: float = 4.0        # MLP hidden = mlp_ratio * stage width
    T: int = 4                    # time steps for static input (temporal input brings its own T)
    embed: str = "cifar"          # SPEDS layout: "cifar" (stem keeps the grid), "imagenet" (stem downsamples 4x)
                                  # or "dvs" (two stages, D/2 and D; the stem downsamples 8x)
    qkv_bias: bool = False        # Q/K/V are bias-free 1x1 convs in the official code
    token_attention: str = "qk_token"  # attention of stages 1-2
    token_attention_opts: Dict[str, Any] = field(default_factory=dict)
    attention: str = "ssa"        # attention of stage 3
    attention_opts: Dict[str, Any] = field(default_factory=dict)
    neuron: str = "lif"           # neuron registry name, used everywhere a spiking neuron sits
    neuron_opts: Dict[str, Any] = field(default_factory=dict)
    encoder: str = "direct"       # how a static image becomes [T, B, C, H, W]
    twin: Optional[str] = None    # "ann" | "qann" (quantized ReLUs): ReLU neurons, softmax attention in every stage, T = 1
    weight_bits: Optional[int] = None  # quantize every Linear/Conv weight to this many bits (None: float)


class QKFormerBlock(nn.Module):
    """Spike-residual block on [T, B, N, dim]: x + Attn(x), then x + MLP(x)."""

    def __init__(self, cfg: QKFormerConfig, dim: int, attention: str, attention_opts: Dict[str, Any]):
        super().__init__()
        self.attn = create_attention(attention, dim, cfg.num_heads, neuron=cfg.neuron, neuron_opts=cfg.neuron_opts,
                                     qkv_bias=cfg.qkv_bias, **attention_opts)
        self.mlp = SpikingMLP(dim, int(dim * cfg.mlp_ratio), neuron_factory(cfg.neuron, **cfg.neuron_opts))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


def _check(cfg: QKFormerConfig) -> None:
    cfg.depths = tuple(cfg.depths)
    if cfg.embed not in SPEDS_LAYOUTS:
        raise ValueError(f"QKFormer embed must be one of {', '.join(SPEDS_LAYOUTS)}, got {cfg.embed!r}")
    n = 2 if cfg.embed == "dvs" else 3
    if len(cfg.depths) != n or any(not isinstance(d, int) or d < 0 for d in cfg.depths):
        raise ValueError(f"QKFormer depths must be {n} non-negative integers (blocks per stage) with embed "
                         f"{cfg.embed!r}, got {cfg.depths!r}")
    first, unit = cfg.dim // (2 ** (n - 1)), 16 if cfg.embed == "dvs" else 8  # first stage width; stem's narrowest
    if cfg.dim % unit or first % cfg.num_heads:
        raise ValueError(f"QKFormer dim {cfg.dim} must be divisible by {unit} and its first stage width {first} by "
                         f"num_heads {cfg.num_heads}")
    div = {"imagenet": 16, "dvs": 16, "cifar": 4}[cfg.embed]  # how often the grid is halved
    if cfg.img_size % div:
        raise ValueError(f"QKFormer img_size must be a multiple of {div} with embed {cfg.embed!r}, got {cfg.img_size}")


class QKFormer(nn.Module):
    """Input `[B, C, H, W]` (encoded inside) or `[T, B, C, H, W]`; output logits `[B, classes]`
    (or per-step `[T, B, classes]` with `per_step=True`)."""

    def __init__(self, cfg: QKFormerConfig):
        super().__init__()
        apply_twin(cfg)
        _check(cfg)
        self.cfg = cfg
        neuron = neuron_factory(cfg.neuron, **cfg.neuron_opts)
        n = len(cfg.depths)
        widths = tuple(cfg.dim // 2 ** (n - 1 - i) for i in range(n))  # D/4, D/2, D (DVS: D/2, D)
        self.encoder = create_encoder(cfg.encoder, cfg.T)
        self.patch_embeds = nn.ModuleList([speds_stem(cfg.in_chans, widths[0], cfg.embed, neuron)]
                                          + [speds_stage(w, cfg.embed, neuron) for w in widths[1:]])
        attn = [(cfg.token_attention, cfg.token_attention_opts)] * (n - 1) + [(cfg.attention, cfg.attention_opts)]
        self.stages = nn.ModuleList(
            nn.ModuleList(QKFormerBlock(cfg, w, name, opts) for _ in range(depth))
            for w, depth, (name, opts) in zip(widths, cfg.depths, attn)
        )
        self.head = ClassifierHead(cfg.dim, cfg.num_classes)

    def forward_features(self, x: Tensor) -> List[Tensor]:
        """Every feature map [T, B, C, h, w]: the output of each stage (widths D/4, D/2, D; DVS: D/2, D)."""
        x = encoded_input(self, x, "QKFormer")
        maps: List[Tensor] = []
        for embed, blocks in zip(self.patch_embeds, self.stages):
            x = embed(x)  # [T, B, C, h, w]
            h, w = x.shape[-2:]
            x = x.flatten(3).transpose(2, 3)  # [T, B, N, C]
            for blk in blocks:
                x = blk(x)
            x = x.transpose(2, 3).unflatten(3, (h, w))  # [T, B, C, h, w]
            maps.append(x)
        return maps

    def forward(self, x: Tensor, per_step: bool = False) -> Tensor:
        x = self.forward_features(x)[-1]  # the last stage's map [T, B, D, h, w]
        logits = self.head(x.flatten(3).transpose(2, 3))  # [T, B, classes]
        return logits if per_step else logits.mean(0)


_CIFAR = dict(img_size=32, in_chans=3, num_classes=10, embed="cifar", num_heads=8)
_IMAGENET = dict(img_size=224, in_chans=3, num_classes=1000, embed="imagenet", depths=(1, 2, 7))


class _BatchAsTime(nn.Module):
    """A neuron run over `[T B, ...]` as if T B were its time axis (the official QKFormer's stage-3
    projection LIF sees that tensor): membrane passes from each sample to the next of the batch."""

    def __init__(self, neuron: nn.Module):
        super().__init__()
        self.neuron = neuron

    def forward(self, x: Tensor) -> Tensor:
        return self.neuron(x.reshape(x.shape[0] * x.shape[1], 1, *x.shape[2:])).reshape(x.shape)


def official_batch_quirk(model: "QKFormer") -> "QKFormer":
    """Make stage 3's projection LIFs behave as in the official code (in place), so that official
    checkpoints reproduce their published evaluation numbers; outputs then depend on the batch. For
    evaluation with converted weights, not for training."""
    for blk in model.stages[-1]:
        if not isinstance(blk.attn.proj_neuron, _BatchAsTime):
            blk.attn.proj_neuron = _BatchAsTime(blk.attn.proj_neuron)
    return model


def _qkformer(defaults: Dict[str, Any], overrides: Dict[str, Any]) -> QKFormer:
    return QKFormer(build_config(QKFormerConfig, defaults, overrides, "QKFormer"))


def _published(dataset: str, top1: float, params_m: float, **extra: Any) -> Dict[str, Any]:
    return dict(dataset=dataset, top1=top1, params_m=params_m, source="Zhou et al., NeurIPS 2024", **extra)


@register_model(family="qkformer", note="small QKFormer (8x8 grayscale) for tests and quick runs")
def qkformer_tiny(**kw):
    return _qkformer(dict(img_size=8, in_chans=1, num_classes=10, dim=64, depths=(1, 1, 1), num_heads=2, embed="cifar"), kw)


@register_model(family="qkformer", published=_published("CIFAR-10", 96.18, 6.70, note="CIFAR-100 81.15 with 6.74 M"))
def qkformer_4_384(**kw):
    return _qkformer(dict(_CIFAR, dim=384, depths=(1, 1, 2)), kw)


@register_model(family="qkformer", published=_published("CIFAR10-DVS", 84.0, 1.50, note="T = 16; official count 1,504,138"))
def qkformer_2_256_dvs(**kw):
    return _qkformer(dict(img_size=128, in_chans=2, num_classes=10, dim=256, depths=(1, 1), num_heads=16, mlp_ratio=1.0,
                          embed="dvs", T=16), kw)


@register_model(family="qkformer", published=_published("ImageNet", 78.80, 16.47))
def qkformer_10_384(**kw):
    return _qkformer(dict(_IMAGENET, dim=384, num_heads=6), kw)


@register_model(family="qkformer", published=_published("ImageNet", 82.04, 29.08))
def qkformer_10_512(**kw):
    return _qkformer(dict(_IMAGENET, dim=512, num_heads=8), kw)


@register_model(family="qkformer", published=_published("ImageNet", 84.22, 64.96, note="85.65 at 384 px, fine-tuned"))
def qkformer_10_768(**kw):
    return _qkformer(dict(_IMAGENET, dim=768, num_heads=12), kw)
