"""Backbones as multi-scale feature extractors, as timm's `features_only`:

    backbone = create_model("spikformer_8_512", features_only=True, out_indices=(2, 4), img_size=64, in_chans=1)
    feats = backbone(x)              # [T, B, C_i, H / r_i, W / r_i] for each index, spikes or membranes
    backbone.feature_info            # [{"index": 2, "num_chs": 256, "reduction": 8}, ...]

Feature maps per family (`forward_features`): Spikformer and SDT, the four patch-embedding stages
(D/8, D/4, D/2, D channels; reductions by the pooling flags) and the last block's tokens on their grid
(D); QKFormer, its three stages (D/4, D/2, D). The classification head is removed. Channels and
reductions are measured once with a forward on the meta device (no memory, no arithmetic).
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

import torch
from torch import Tensor, nn

from ._builder import encoded_input

__all__ = ["FeatureBackbone", "feature_info"]


class _Features(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.m = model

    def forward(self, x: Tensor) -> List[Tensor]:
        return self.m.forward_features(x)


def feature_info(model: nn.Module) -> List[Dict[str, int]]:
    """Channels and reduction (input side / map side) of every map `model.forward_features` returns,
    from one forward with meta stand-ins for the weights and the input (shapes only)."""
    cfg = model.cfg
    meta = {f"m.{k}": torch.empty_like(v, device="meta") for k, v in [*model.named_parameters(), *model.named_buffers()]}
    x = torch.empty(1, cfg.in_chans, cfg.img_size, cfg.img_size, device="meta")
    was = model.training
    model.eval()
    try:
        maps = torch.func.functional_call(_Features(model), meta, (x,))
    finally:
        model.train(was)
    return [{"index": i, "num_chs": int(m.shape[2]), "reduction": cfg.img_size // int(m.shape[-1])}
            for i, m in enumerate(maps)]


class FeatureBackbone(nn.Module):
    """A backbone that returns the feature maps at `out_indices` (a list, finest first as given)."""

    def __init__(self, model: nn.Module, out_indices: Sequence[int]):
        super().__init__()
        name = getattr(model, "model_name", type(model).__name__)
        if not hasattr(model, "forward_features"):
            raise ValueError(f"{name} cannot give feature maps (no forward_features); backbones: Spikformer, SDT "
                             f"and QKFormer models")
        if hasattr(model, "head"):
            del model.head  # classification only
        self.model = model
        info = feature_info(model)
        idx = [int(i) for i in out_indices]
        bad = [i for i in idx if not -len(info) <= i < len(info)]
        if bad or not idx:
            raise ValueError(f"{name} has {len(info)} feature maps (indices 0..{len(info) - 1}, reductions "
                             f"{[f['reduction'] for f in info]}); out_indices {tuple(out_indices)} is not available")
        self.out_indices = [i % len(info) for i in idx]
        self.feature_info = [info[i] for i in self.out_indices]

    @property
    def cfg(self) -> Any:
        return self.model.cfg

    def encode(self, x: Tensor) -> Tensor:
        """The input as the backbone's first layer reads it: [T, B, C, H, W] (a static batch encoded,
        time-first input checked and passed through). `forward` takes either."""
        return encoded_input(self.model, x, type(self.model).__name__)

    def forward(self, x: Tensor) -> List[Tensor]:
        maps = self.model.forward_features(x)
        return [maps[i] for i in self.out_indices]
