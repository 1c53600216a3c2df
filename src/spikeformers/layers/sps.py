"""Spiking Patch Splitting (SPS, Spikformer) and its membrane-shortcut form (MS-SPS, Spike-driven Transformer).

Four conv3x3-BN-neuron stages with D/8, D/4, D/2, D channels; `pooling` (e.g. "0011") says after which
stages a 3x3/stride-2 max-pool halves the grid (CIFAR "0011": 32 -> 8, 64 tokens; ImageNet "1111":
224 -> 14, 196 tokens). Then RPE = SN(BN(Conv3x3(x))) and X0 = x + RPE (a spike + spike sum, values
in {0, 1, 2}).

MS-SPS (Yao et al., NeurIPS 2023; BICLab/Spike-Driven-Transformer module/sps.py) has the same parameters
but outputs membrane potentials: stages 1-3 are conv-BN-SN(-pool), stage 4 is conv-BN(-pool) with no
neuron, giving x_feat; RPE = BN(Conv3x3(SN(x_feat))) and the output is x_feat + RPE (real), which the
first block's neurons read.
"""
from __future__ import annotations

from typing import Callable, List, Optional

from torch import Tensor, nn

from .bn_fire import fire
from .maxpool import MaxPool2d
from .time import ConvBN, fold, unfold

__all__ = ["SPS", "MSSPS", "check_pooling"]


def check_pooling(pooling: str, img_size: int, stages: int = 4) -> int:
    """Validate a pooling string and return the token grid side."""
    if not isinstance(pooling, str) or len(pooling) != stages or set(pooling) - {"0", "1"}:
        raise ValueError(f"pooling must be a string of {stages} '0'/'1' flags (e.g. '0011'), got {pooling!r}")
    side = img_size
    for flag in pooling:
        if flag == "1":
            side = (side + 1) // 2  # MaxPool2d(3, 2, padding 1): ceil(side / 2), odd sides included
    return side


class SPS(nn.Module):
    """[T, B, C, H, W] -> tokens [T, B, N, D]."""

    def __init__(self, in_chans: int, dim: int, img_size: int, pooling: str, neuron: Callable[..., nn.Module]):
        super().__init__()
        if dim % 8:
            raise ValueError(f"SPS needs dim divisible by 8, got {dim}")
        self.grid = check_pooling(pooling, img_size)
        chans = [in_chans, dim // 8, dim // 4, dim // 2, dim]
        self.stages = nn.ModuleList(ConvBN(chans[i], chans[i + 1]) for i in range(4))
        self.neurons = nn.ModuleList(neuron() for _ in range(4))
        self.pools = nn.ModuleList(MaxPool2d(3, 2, 1) if f == "1" else nn.Identity() for f in pooling)
        self.rpe = ConvBN(dim, dim)
        self.rpe_neuron = neuron()

    def forward(self, x: Tensor, maps: Optional[List[Tensor]] = None) -> Tensor:
        """`maps`: a list that receives each stage's output [T, B, C_i, h_i, w_i] (backbone features)."""
        for i in range(4):
            x = self.stage(i, x)
            if maps is not None:
                maps.append(x)
        return self.stage(4, x).flatten(3).transpose(2, 3)  # [T, B, N, D]

    def stage(self, i: int, x: Tensor) -> Tensor:
        """Stage i < 4: conv-BN-neuron(-pool); 4: x + RPE [T, B, D, h, w]. The unit `run.memory=recompute` reruns."""
        if i == 4:
            return x + fire(self.rpe, self.rpe_neuron, x)
        return unfold(self.pools[i](fold(fire(self.stages[i], self.neurons[i], x))), x.shape[0])


class MSSPS(nn.Module):
    """[T, B, C, H, W] -> membrane tokens [T, B, N, D] (real). Parameter names as in `SPS`.

    `neurons[0..2]` follow stages 1-3; `neurons[3]` turns x_feat into the spikes the RPE conv reads.
    """

    def __init__(self, in_chans: int, dim: int, img_size: int, pooling: str, neuron: Callable[..., nn.Module]):
        super().__init__()
        if dim % 8:
            raise ValueError(f"MS-SPS needs dim divisible by 8, got {dim}")
        self.grid = check_pooling(pooling, img_size)
        chans = [in_chans, dim // 8, dim // 4, dim // 2, dim]
        self.stages = nn.ModuleList(ConvBN(chans[i], chans[i + 1]) for i in range(4))
        self.neurons = nn.ModuleList(neuron() for _ in range(4))
        self.pools = nn.ModuleList(MaxPool2d(3, 2, 1) if f == "1" else nn.Identity() for f in pooling)
        self.rpe = ConvBN(dim, dim)

    def forward(self, x: Tensor, maps: Optional[List[Tensor]] = None) -> Tensor:
        """`maps`: a list that receives each stage's output (stage 4: the membrane x_feat)."""
        for i in range(4):
            x = self.stage(i, x)
            if maps is not None:
                maps.append(x)
        return self.stage(4, x).flatten(3).transpose(2, 3)  # [T, B, N, D]

    def stage(self, i: int, x: Tensor) -> Tensor:
        """Stages 0-2: conv-BN-neuron(-pool); 3: conv-BN(-pool), the membrane x_feat; 4: x_feat + RPE. The unit
        `run.memory=recompute` reruns."""
        if i == 4:
            return x + self.rpe(self.neurons[3](x))
        y = fire(self.stages[i], self.neurons[i], x) if i < 3 else self.stages[i](x)
        return unfold(self.pools[i](fold(y)), x.shape[0])
