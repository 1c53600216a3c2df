"""Dense prediction models: any registered backbone (Spikformer, SDT, QKFormer, any attention and neuron)
as a multi-scale feature extractor, plus a spiking head.

    fpn_segmenter   backbone features -> SpikingFPNHead -> per-pixel logits [B, classes + 1, S, S]
                    (index 0: background)
    fcos_detector   backbone features -> SpikingFCOSHead -> {"cls" [B, L, classes], "box" [B, L, 4], "ctr" [B, L]}
                    at the locations of the chosen levels (`tasks/detect.py` decodes them)

    create_model("fcos_detector", backbone="spikformer_4_384", backbone_opts={"dim": 128, "depth": 2},
                 out_indices=(2, 3), img_size=64, in_chans=1, num_classes=10)

The head's neurons are the backbone's (after the twin swap), so `twin="ann"` gives the ANN twin of the
whole model (ReLU everywhere, softmax attention, T = 1) and `twin="qann"` its quantized twin. `T`,
`attention`, `neuron`, `neuron_opts`, `encoder`, `twin` and `weight_bits` go to the backbone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from torch import Tensor, nn

from ..layers.det_head import SpikingFCOSHead
from ..layers.seg_head import READOUTS, SpikingFPNHead
from ..neurons.registry import neuron_factory
from .registry import create_model, register_model
from ._builder import build_config

__all__ = ["DenseConfig", "FPNSegmenter", "FCOSDetector"]

_PASS = ("T", "attention", "neuron", "neuron_opts", "encoder", "twin", "weight_bits")


@dataclass
class DenseConfig:
    backbone: str = "spikformer_8_384"  # registered Spikformer, SDT or QKFormer model
    backbone_opts: Dict[str, Any] = field(default_factory=dict)  # its sizes (dim, depth, num_heads, pooling, ...)
    out_indices: Tuple[int, ...] = (2, 3)  # the backbone maps the head reads, finest first (features.py)
    img_size: int = 64
    in_chans: int = 1
    num_classes: int = 10  # object classes (segmentation adds the background)
    head_dim: int = 64  # channels of the head
    fine_dim: int = 0  # segmentation: channels of the full-resolution refinement (seg_head.py; 0: none)
    coarse_logits: bool = False  # segmentation with fine_dim: add the fused map's own class logits (seg_head.py)
    readout: str = "membrane"  # segmentation: "membrane" (mean classifier output) or "rate" (firing rate)
    T: Optional[int] = None  # the options below go to the backbone (None: its own)
    attention: Optional[str] = None
    neuron: Optional[str] = None
    neuron_opts: Optional[Dict[str, Any]] = None
    encoder: Optional[str] = None
    twin: Optional[str] = None  # "ann" | "qann": the twin of backbone and head
    weight_bits: Optional[int] = None


class _Dense(nn.Module):
    def __init__(self, cfg: DenseConfig):
        super().__init__()
        if cfg.readout not in READOUTS:
            raise ValueError(f"readout must be one of {', '.join(READOUTS)}, got {cfg.readout!r}")
        self.cfg = cfg
        kw = dict(cfg.backbone_opts, img_size=cfg.img_size, in_chans=cfg.in_chans)
        kw.update({k: getattr(cfg, k) for k in _PASS if getattr(cfg, k) is not None})
        self.backbone = create_model(cfg.backbone, features_only=True, out_indices=cfg.out_indices, **kw)
        b = self.backbone.cfg  # after the twin swap: the neuron every layer of the head uses too
        self.neuron = neuron_factory(b.neuron, **b.neuron_opts)
        self.in_chs = [f["num_chs"] for f in self.backbone.feature_info]
        self.strides = [f["reduction"] for f in self.backbone.feature_info]


class FPNSegmenter(_Dense):
    """`forward(x [B, C, S, S] or [T, B, C, S, S]) -> logits [B, classes + 1, S, S]`."""

    def __init__(self, cfg: DenseConfig):
        super().__init__(cfg)
        self.head = SpikingFPNHead(self.in_chs, cfg.num_classes + 1, cfg.head_dim, self.neuron, cfg.readout,
                                   cfg.fine_dim, self.backbone.cfg.in_chans, cfg.coarse_logits)

    def forward(self, x: Tensor) -> Tensor:
        # encoded once and made contiguous, so the backbone's first conv and the refinement (fine_dim) read
        # one tensor (the energy counter then charges both as the analog first layer)
        x = self.backbone.encode(x).contiguous()
        return self.head(self.backbone(x), self.cfg.img_size, x)


class FCOSDetector(_Dense):
    """`forward(x) -> {"cls", "box", "ctr"}` at every location of the chosen levels (see the module docstring)."""

    def __init__(self, cfg: DenseConfig):
        if cfg.fine_dim or cfg.coarse_logits:
            raise ValueError(f"fine_dim and coarse_logits (the segmenter's full-resolution refinement) do not apply to a "
                             f"detector; got fine_dim={cfg.fine_dim}, coarse_logits={cfg.coarse_logits}")
        super().__init__(cfg)
        self.head = SpikingFCOSHead(self.in_chs, self.strides, cfg.num_classes, cfg.head_dim, self.neuron)

    def level_sizes(self):
        return [(-(-self.cfg.img_size // s),) * 2 for s in self.strides]

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        return self.head(self.backbone(x))


# A small Spikformer for 64 x 64 scenes: stride-2 pools after the first two SPS stages (maps at 2, 4, 4,
# 4; tokens on a 16 x 16 grid), the layout docs/dense.md describes.
_SMALL = {"dim": 128, "depth": 2, "num_heads": 4, "pooling": "1100"}


def _dense(cls, defaults: Dict[str, Any], overrides: Dict[str, Any]):
    return cls(build_config(DenseConfig, defaults, overrides, cls.__name__))


@register_model(family="dense", note="spiking FPN segmentation head on a backbone (default Spikformer 2 x 128)")
def fpn_segmenter(**kw):
    return _dense(FPNSegmenter, dict(backbone="spikformer_8_384", backbone_opts=_SMALL, out_indices=(1, 2, 4),
                                     fine_dim=32, coarse_logits=True), kw)


@register_model(family="dense", note="spiking FCOS detection head on a backbone (default Spikformer 2 x 128)")
def fcos_detector(**kw):
    return _dense(FCOSDetector, dict(backbone="spikformer_8_384", backbone_opts=_SMALL, out_indices=(4,)), kw)
