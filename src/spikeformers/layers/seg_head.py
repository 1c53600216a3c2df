"""A spiking FPN decode head for semantic segmentation (Kirillov et al.'s panoptic FPN, spiking).

    level i:  L_i = BN(Conv1x1(F_i))                         [T, B, dim, h_i, w_i] (real, any input domain)
    top-down: P = L_coarsest; P = up2(P) + L_i, finer levels in turn   (nearest upsampling, real sums)
    fuse:     S = SN(BN(Conv3x3(SN(P))))                     spikes
    read-out: logits = mean over T of Conv1x1(S)             membrane read-out, [B, classes + 1, h_0, w_0]
              then bilinear upsampling to the input size

With `fine_dim` > 0 the head refines at the input's resolution, where object edges are (a backbone's
finest map has stride 2 or 4; from the fashion_mnist_scenes test masks, a perfect classifier at stride
4 reaches at most 85.8 % mIoU):

    fine:     R = SN(up(BN(Conv1x1(S))) + BN(Conv3x3(X)))   [T, B, fine_dim, H, W]; X the encoded input
    read-out: logits = mean over T of Conv3x3(R)             [B, classes + 1, H, W]
              (+ bilinear up(mean over T of Conv1x1(S)) with `coarse_logits`: the fused map's own class
              logits, so the class need not pass the fine_dim spike channels, which then only correct
              the edges)

(up: nearest, so the 1x1 conv runs at the coarse size.) X is what the backbone's first conv reads
(the direct-encoded image, or event frames), as in U-Net's and DeepLabv3+'s low-level skips.

Every conv after the laterals reads spikes; the laterals (and the fine path's input conv) read whatever
the backbone gives (spikes from Spikformer and QKFormer stages, membranes from SDT's last stage).
`readout="rate"` adds a neuron after the classifier and reads its firing rate instead.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from .bn_fire import fire
from .time import ConvBN, fold, unfold

__all__ = ["SpikingFPNHead", "READOUTS"]

READOUTS = ("membrane", "rate")


class SpikingFPNHead(nn.Module):
    """Args: in_chs (channels of each level, finest first), num_outputs (classes + background), dim,
    neuron (a factory), readout ("membrane" | "rate"), fine_dim (channels of the full-resolution
    refinement; 0: none), in_chans (the input's channels, for the refinement), coarse_logits (with
    fine_dim: add the fused map's own upsampled class logits to the refinement's; without, the logits are
    the fused map's anyway)."""

    def __init__(self, in_chs: Sequence[int], num_outputs: int, dim: int, neuron: Callable[..., nn.Module],
                 readout: str = "membrane", fine_dim: int = 0, in_chans: int = 1, coarse_logits: bool = False):
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"unknown read-out {readout!r}; valid: {', '.join(READOUTS)}")
        self.lateral = nn.ModuleList(ConvBN(c, dim, kernel_size=1) for c in in_chs)
        self.neuron1 = neuron()
        self.fuse = ConvBN(dim, dim, kernel_size=3)
        self.neuron2 = neuron()
        if fine_dim < 0:
            raise ValueError(f"fine_dim must be >= 0, got {fine_dim}")
        self.fine_dim = fine_dim
        if fine_dim:
            self.coarse = ConvBN(dim, fine_dim, kernel_size=1)
            self.fine_in = ConvBN(in_chans, fine_dim, kernel_size=3)
            self.fine_neuron = neuron()
            self.classifier = nn.Conv2d(fine_dim, num_outputs, 3, padding=1)
            self.coarse_classifier = nn.Conv2d(dim, num_outputs, 1) if coarse_logits else None
        else:  # the logits are the coarse map's own: coarse_logits changes nothing
            self.classifier = nn.Conv2d(dim, num_outputs, 1)
        self.out_neuron = neuron() if readout == "rate" else None

    def forward(self, feats: List[Tensor], size: int, x: Optional[Tensor] = None) -> Tensor:
        """`feats`: the backbone's maps, finest first; `x`: its encoded input [T, B, C, H, W] (needed
        with `fine_dim`)."""
        T = feats[0].shape[0]
        p = self.lateral[-1](feats[-1])
        for lat, f in zip(reversed(self.lateral[:-1]), reversed(feats[:-1])):
            up = unfold(F.interpolate(fold(p), size=f.shape[-2:], mode="nearest"), T)
            p = up + lat(f)
        s = fire(self.fuse, self.neuron2, self.neuron1(p))
        coarse = None
        if self.fine_dim:
            if x is None:
                raise ValueError("a segmentation head with fine_dim > 0 needs the encoded input")
            up = unfold(F.interpolate(fold(self.coarse(s)), size=x.shape[-2:], mode="nearest"), T)
            r = self.fine_neuron(up + self.fine_in(x))
            out = unfold(self.classifier(fold(r)), T)  # [T, B, K, H, W]
            if self.coarse_classifier is not None:
                coarse = unfold(self.coarse_classifier(fold(s)), T)
        else:
            out = unfold(self.classifier(fold(s)), T)  # [T, B, K, h, w]
        if self.out_neuron is not None:
            if coarse is not None:  # the neuron reads each step's sum
                out = out + unfold(_upsample(fold(coarse), out.shape[-2:]), T)
            out = self.out_neuron(out).mean(0)
        else:
            out = out.mean(0)
            if coarse is not None:  # linear: averaged over T first, upsampled once
                out = out + _upsample(coarse.mean(0), out.shape[-2:])
        if out.shape[-2:] == (size, size):  # the refinement already reads out at the input's size
            return out
        return _upsample(out, (size, size))


def _upsample(logits: Tensor, size) -> Tensor:
    """Bilinear upsampling of class logits (both read-out sizes) in fp32: its backward accumulates with
    atomic adds, slow in bf16."""
    return F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)
