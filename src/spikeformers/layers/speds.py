"""Spiking Patch Embedding with Deformed Shortcut (SPEDS), QKFormer (Zhou et al., NeurIPS 2024, arXiv 2403.16552).

A chain of conv3x3-BN(-maxpool)-SN stages plus a 1x1 conv-BN-SN shortcut taken from an earlier point
of the chain (stride 2 when the chain pools after it); the two spike maps are added (values {0, 1, 2}):

    y = SN(BN(pool?(Conv3x3(...)))) chain            main path
    s = SN(BN(Conv1x1_stride(x_at)))                  deformed shortcut
    out = y + s

Layouts of the official code (zhouchenlin2096/QKFormer), `d` the output width:
- stem, "imagenet": in->d/2 (pool), d/2->d (pool), d->d; shortcut d/2->d stride 2 from the first stage
  (224 -> 56).
- stem, "cifar":    in->d/2, d/2->d; shortcut d/2->d stride 1 from the first stage (grid kept).
- stage, "imagenet": d/2->d (pool), d->d; shortcut d/2->d stride 2 from the input.
- stage, "cifar":    d/2->d, d->d (pool); shortcut d/2->d stride 2 from the input.
- stem, "dvs":      in->d/8, d/8->d/4 (pool), d/4->d/2 (pool), d/2->d (pool); shortcut d/4->d stride 4
  from the second stage (the CIFAR10-DVS / DVS128 model, 128 -> 16).
- stage, "dvs":     as "cifar".
"""
from __future__ import annotations

from typing import Callable, Sequence

from torch import Tensor, nn

from .bn_fire import fire
from .maxpool import MaxPool2d
from .time import ConvBN, fold, unfold

__all__ = ["SPEDS", "speds_stem", "speds_stage", "SPEDS_LAYOUTS"]

SPEDS_LAYOUTS = ("cifar", "imagenet", "dvs")


class SPEDS(nn.Module):
    """[T, B, C_in, H, W] -> spikes + shortcut spikes [T, B, C_out, H', W'].

    Args:
        chans: widths along the main path (len = stages + 1).
        pools: one '0'/'1' flag per stage; '1' max-pools (3x3, stride 2) between BN and the neuron.
        shortcut_at: the main-path point the shortcut starts from (0 = the input, i = after stage i).
        neuron: factory of spiking neurons.
    """

    def __init__(self, chans: Sequence[int], pools: str, shortcut_at: int, neuron: Callable[..., nn.Module]):
        super().__init__()
        if len(pools) != len(chans) - 1 or not 0 <= shortcut_at < len(chans) - 1:
            raise ValueError(f"SPEDS: {len(chans) - 1} stages need as many pool flags (got {pools!r}) "
                             f"and a shortcut point before the last (got {shortcut_at})")
        self.shortcut_at = shortcut_at
        self.stages = nn.ModuleList(ConvBN(chans[i], chans[i + 1]) for i in range(len(pools)))
        self.pools = nn.ModuleList(MaxPool2d(3, 2, 1) if f == "1" else nn.Identity() for f in pools)
        self.neurons = nn.ModuleList(neuron() for _ in pools)
        stride = 2 ** pools[shortcut_at:].count("1")
        self.shortcut = ConvBN(chans[shortcut_at], chans[-1], kernel_size=1, stride=stride)
        self.shortcut_neuron = neuron()

    def forward(self, x: Tensor) -> Tensor:
        T = x.shape[0]
        x_at = x
        for i, (conv, pool, sn) in enumerate(zip(self.stages, self.pools, self.neurons)):
            if i == self.shortcut_at:
                x_at = x
            # [T, B, C, H, W]; the pool sits between BN and the neuron, so only a stage without one fuses them
            x = fire(conv, sn, x) if isinstance(pool, nn.Identity) else sn(unfold(pool(fold(conv(x))), T))
        return x + fire(self.shortcut, self.shortcut_neuron, x_at)


def _check_layout(layout: str) -> None:
    if layout not in SPEDS_LAYOUTS:
        raise ValueError(f"unknown SPEDS layout {layout!r}; valid layouts: {', '.join(SPEDS_LAYOUTS)}")


def speds_stem(in_chans: int, dim: int, layout: str, neuron: Callable[..., nn.Module]) -> SPEDS:
    """The first patch embedding (image -> stage-1 width `dim`): 4x downsampling on "imagenet", none on "cifar"."""
    _check_layout(layout)
    if layout == "imagenet":
        return SPEDS([in_chans, dim // 2, dim, dim], "110", 1, neuron)
    if layout == "dvs":
        return SPEDS([in_chans, dim // 8, dim // 4, dim // 2, dim], "0111", 2, neuron)
    return SPEDS([in_chans, dim // 2, dim], "00", 1, neuron)


def speds_stage(dim: int, layout: str, neuron: Callable[..., nn.Module]) -> SPEDS:
    """Between stages: width dim/2 -> dim, grid halved."""
    _check_layout(layout)
    return SPEDS([dim // 2, dim, dim], "10" if layout == "imagenet" else "01", 0, neuron)  # "dvs": as "cifar"
