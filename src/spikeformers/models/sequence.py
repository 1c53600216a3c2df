"""Spikformer over 1-D sequences (sequential MNIST/CIFAR, MNIST-1D): a spiking transformer on tokens of
a sequence instead of image patches.

    X0 = SPS1d(I)                    I [T, B, L, F] -> tokens [T, B, N, D]
    Xl = Spikformer blocks            the same SpikformerBlock and attention registry as the images
    Y  = Linear(mean_tokens(XL)), averaged over T

Input `[B, L, F]` (encoded inside over T steps, "direct" by default) or `[T, B, L, F]`.
The 4-384 size and its sequential numbers are STEP's (Fancyssc/STEP, NeurIPS 2025, cls/Results.md:
Spikformer sMNIST 98.84, psMNIST 97.97, sCIFAR-10 84.26; T = 4, 400 epochs); the embedding follows
STEP's `sequential_embed` (see `layers/sps1d.py` for the differences).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from torch import Tensor, nn

from ..encoding import create_encoder
from ..layers import ClassifierHead
from ..layers.sps1d import SPS1d
from ..neurons.registry import neuron_factory
from .registry import register_model
from ._builder import apply_twin, build_config
from .spikformer import SpikformerBlock

__all__ = ["SpikformerSeqConfig", "SpikformerSeq"]


@dataclass
class SpikformerSeqConfig:
    seq_len: int = 784            # L, steps per sequence
    in_features: int = 1          # F, features per step
    num_classes: int = 10
    dim: int = 384                # D (embedding width)
    depth: int = 4                # number of blocks
    num_heads: int = 12
    mlp_ratio: float = 4.0        # MLP hidden = mlp_ratio * D
    T: int = 4                    # time steps for [B, L, F] input ([T, B, L, F] brings its own T)
    strides: str = "0111"         # SPS1d stages with stride 2 (STEP: "0111" below L = 1024, "1111" from it)
    kernel_size: int = 5          # SPS1d convolution width
    tokens: int = 0               # adaptive max-pool to this many tokens (0: keep the length after strides)
    conv_bias: bool = True        # bias in the SPS1d convolutions (STEP's nn.Conv1d default)
    qkv_bias: bool = True         # bias in the Q/K/V Linear
    attention: str = "ssa"        # attention registry name
    attention_opts: Dict[str, Any] = field(default_factory=dict)
    mlp: str = "spiking"          # MLP registry name ("emsp" needs a 2-D token grid: not for sequences)
    neuron: str = "lif"           # neuron registry name, used everywhere a spiking neuron sits
    neuron_opts: Dict[str, Any] = field(default_factory=dict)
    encoder: str = "direct"       # how a static sequence becomes [T, B, L, F]
    twin: Optional[str] = None    # "ann" | "qann" (quantized ReLUs): ReLU neurons, softmax attention, T = 1
    weight_bits: Optional[int] = None  # quantize every Linear/Conv weight to this many bits (None: float)


class SpikformerSeq(nn.Module):
    """Input `[B, L, F]` or `[T, B, L, F]`; output logits `[B, classes]` (per step `[T, B, classes]`
    with `per_step=True`, for TET-style losses)."""

    def __init__(self, cfg: SpikformerSeqConfig):
        super().__init__()
        apply_twin(cfg)
        self.cfg = cfg
        neuron = neuron_factory(cfg.neuron, **cfg.neuron_opts)
        self.encoder = create_encoder(cfg.encoder, cfg.T)
        self.patch_embed = SPS1d(cfg.in_features, cfg.dim, cfg.seq_len, cfg.strides, neuron,
                                 kernel_size=cfg.kernel_size, tokens=cfg.tokens or None, bias=cfg.conv_bias)
        self.blocks = nn.ModuleList(SpikformerBlock(cfg) for _ in range(cfg.depth))
        self.head = ClassifierHead(cfg.dim, cfg.num_classes)

    def forward(self, x: Tensor, per_step: bool = False) -> Tensor:
        L, F = self.cfg.seq_len, self.cfg.in_features
        if not hasattr(x, "shape") or x.dim() not in (3, 4) or tuple(x.shape[-2:]) != (L, F):
            shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
            raise ValueError(f"{getattr(self, 'model_name', 'SpikformerSeq')} expects sequences [B, {L}, {F}] or "
                             f"[T, B, {L}, {F}], got shape {shape}")
        if x.dim() == 3:
            x = self.encoder(x)  # [T, B, L, F]
        x = self.patch_embed(x)  # [T, B, N, D]
        for blk in self.blocks:
            x = blk(x)
        logits = self.head(x)  # [T, B, classes]
        return logits if per_step else logits.mean(0)


def _seq(defaults: Dict[str, Any], overrides: Dict[str, Any]) -> SpikformerSeq:
    return SpikformerSeq(build_config(SpikformerSeqConfig, defaults, overrides, "SpikformerSeq"))


_STEP = "STEP (Fancyssc/STEP, NeurIPS 2025, cls/Results.md)"


@register_model(family="spikformer_seq", note="small sequence model for MNIST-1D on a CPU")
def spikformer_seq_tiny(**kw):
    return _seq(dict(seq_len=40, in_features=1, dim=64, depth=1, num_heads=4, strides="0011", kernel_size=5), kw)


@register_model(family="spikformer_seq", published=dict(
    dataset="sMNIST", top1=98.84, params_m=8.05, params_source="calc: STEP publishes no count", source=_STEP,
    others={"psMNIST": 97.97, "sCIFAR-10 (pixel, strides 1111)": 84.26}))
def spikformer_seq_4_384(**kw):
    return _seq(dict(dim=384, depth=4, num_heads=12, strides="0111", tokens=64), kw)
