"""A spiking single-stage, anchor-free detection head (FCOS, Tian et al., ICCV 2019; spiking towers as in
SpikeYOLO, Luo et al., ECCV 2024), shared by every level.

    level i:  L_i = SN(BN(Conv1x1(F_i)))                      [T, B, dim, h_i, w_i] spikes
    towers:   C = SN(BN(Conv3x3(SN(BN(Conv3x3(L_i))))))  for classes, a second tower R for boxes
    outputs:  mean over T (membrane read-out) of Conv3x3(C) -> class logits, Conv3x3(R) -> box distances
              (exp(s_i x) * stride_i, a learned scale per level) and centreness
Per level the locations are flattened row-major and concatenated, finest first:
`{"cls": [B, L, classes], "box": [B, L, 4] (left, top, right, bottom in pixels), "ctr": [B, L]}`.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Sequence

import torch
from torch import Tensor, nn

from .bn_fire import fire
from .time import ConvBN, fold, unfold

__all__ = ["SpikingFCOSHead"]


def _tower(dim: int, neuron: Callable[..., nn.Module]) -> nn.ModuleList:
    return nn.ModuleList([ConvBN(dim, dim), neuron(), ConvBN(dim, dim), neuron()])


class SpikingFCOSHead(nn.Module):
    """Args: in_chs (channels per level), strides (per level), num_classes, dim, neuron (a factory)."""

    def __init__(self, in_chs: Sequence[int], strides: Sequence[int], num_classes: int, dim: int,
                 neuron: Callable[..., nn.Module]):
        super().__init__()
        self.strides = [int(s) for s in strides]
        self.lateral = nn.ModuleList(ConvBN(c, dim, kernel_size=1) for c in in_chs)
        self.lateral_neurons = nn.ModuleList(neuron() for _ in in_chs)
        self.cls_tower, self.box_tower = _tower(dim, neuron), _tower(dim, neuron)
        self.cls_out = nn.Conv2d(dim, num_classes, 3, padding=1)
        self.box_out = nn.Conv2d(dim, 4, 3, padding=1)
        self.ctr_out = nn.Conv2d(dim, 1, 3, padding=1)
        self.scales = nn.Parameter(torch.ones(len(in_chs)))
        nn.init.constant_(self.cls_out.bias, -4.6)  # sigmoid = 0.01: the focal loss's prior (Lin et al. 2017)

    @staticmethod
    def _run(tower: nn.ModuleList, x: Tensor) -> Tensor:
        for layer in tower:
            x = layer(x)
        return x

    def forward(self, feats: List[Tensor]) -> Dict[str, Tensor]:
        cls, box, ctr = [], [], []
        for i, (f, lat, sn) in enumerate(zip(feats, self.lateral, self.lateral_neurons)):
            T = f.shape[0]
            x = fire(lat, sn, f)
            c, r = self._run(self.cls_tower, x), self._run(self.box_tower, x)
            logits = unfold(self.cls_out(fold(c)), T).mean(0)  # [B, K, h, w]
            dist = unfold(self.box_out(fold(r)), T).mean(0)
            cen = unfold(self.ctr_out(fold(r)), T).mean(0)
            cls.append(logits.flatten(2).transpose(1, 2))  # [B, h w, K]
            box.append((self.scales[i] * dist).clamp(max=10.0).exp().flatten(2).transpose(1, 2) * self.strides[i])
            ctr.append(cen.flatten(1))
        return {"cls": torch.cat(cls, 1), "box": torch.cat(box, 1), "ctr": torch.cat(ctr, 1)}
