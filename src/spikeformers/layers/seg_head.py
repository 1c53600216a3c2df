"""A spiking FPN decode head for semantic segmentation (Kirillov et al.'s panoptic FPN, spiking).

    level i:  L_i = BN(Conv1x1(F_i))                         [T, B, dim, h_i, w_i] (real, any input domain)
    top-down: P = L_coarsest; P = up2(P) + L_i, finer levels in turn   (nearest upsampling, real sums)
    fuse:     S = SN(BN(Conv3x3(SN(P))))                     spikes
    read-out: logits = mean over T of Conv1x1(S)             membrane read-out, [B, classes + 1, h_0, w_0]
              then bilinear upsampling to the input size

Every conv after the laterals reads spikes; the laterals read whatever the backbone gives (spikes from
Spikformer and QKFormer stages, membranes from SDT's last stage). `readout="rate"` adds a neuron after
the classifier and reads its firing rate instead.
"""
from __future__ import annotations

from typing import Callable, List, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from .time import ConvBN, fold, unfold

__all__ = ["SpikingFPNHead", "READOUTS"]

READOUTS = ("membrane", "rate")


class SpikingFPNHead(nn.Module):
    """Args: in_chs (channels of each level, finest first), num_outputs (classes + background), dim,
    neuron (a factory), readout ("membrane" | "rate")."""

    def __init__(self, in_chs: Sequence[int], num_outputs: int, dim: int, neuron: Callable[..., nn.Module],
                 readout: str = "membrane"):
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"unknown read-out {readout!r}; valid: {', '.join(READOUTS)}")
        self.lateral = nn.ModuleList(ConvBN(c, dim, kernel_size=1) for c in in_chs)
        self.neuron1 = neuron()
        self.fuse = ConvBN(dim, dim, kernel_size=3)
        self.neuron2 = neuron()
        self.classifier = nn.Conv2d(dim, num_outputs, 1)
        self.out_neuron = neuron() if readout == "rate" else None

    def forward(self, feats: List[Tensor], size: int) -> Tensor:
        T = feats[0].shape[0]
        p = self.lateral[-1](feats[-1])
        for lat, f in zip(reversed(self.lateral[:-1]), reversed(feats[:-1])):
            up = unfold(F.interpolate(fold(p), size=f.shape[-2:], mode="nearest"), T)
            p = up + lat(f)
        s = self.neuron2(self.fuse(self.neuron1(p)))
        out = unfold(self.classifier(fold(s)), T)  # [T, B, K, h, w]
        if self.out_neuron is not None:
            out = self.out_neuron(out)
        return F.interpolate(out.mean(0), size=(size, size), mode="bilinear", align_corners=False)
