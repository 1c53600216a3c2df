"""Model registry: `@register_model` keys a builder by its function name (timm style).

    model = create_model("spikformer_4_384", attention="a2os2a", num_classes=10, img_size=28, in_chans=1)
    twin  = create_model("spikformer_4_384", twin="ann")
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

import torch
from torch import nn

from .._registry import Registry
from ..layers.quantize import quantize_weights
from .conversion.convert import check_conversion, convert_model
from .convert import load_official
from .features import FeatureBackbone

__all__ = ["MODELS", "register_model", "create_model", "list_models", "model_info", "count_parameters"]

MODELS = Registry("model")


def register_model(fn: Optional[Callable] = None, **meta: Any):
    """Register a builder. Meta keys: family, published (dict: dataset, top1, params_m, source), note."""
    if fn is not None:
        return MODELS.register()(fn)
    return MODELS.register(**meta)


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered model; overrides swap parts (attention, neuron, T, encoder, twin, sizes).

    Unknown names or override keys raise ValueError listing the valid ones. `features_only=True` (with
    `out_indices`) returns the backbone's multi-scale feature maps instead of logits (`features.py`).
    `checkpoint=PATH` loads an official checkpoint (Spikformer, SDT, QKFormer or SpikingJelly names; `convert.py`),
    `checkpoint_source=` names its source when the names do not tell. `conversion={"T": 32}` with
    `twin="qann_sa"` builds the QANN's equivalent spiking network of T steps (`conversion/`), whose
    checkpoint then loads as any other.
    """
    conversion = overrides.pop("conversion", None)
    checkpoint = overrides.pop("checkpoint", None)
    checkpoint_source = overrides.pop("checkpoint_source", None)
    features_only = overrides.pop("features_only", False)
    out_indices = overrides.pop("out_indices", None) if features_only else None
    model = MODELS.get(name)(**overrides)
    bits = getattr(getattr(model, "cfg", None), "weight_bits", None)
    if bits is not None:
        quantize_weights(model, bits)
    model.model_name = name
    model.model_args = dict(overrides)  # with the name, enough to rebuild the model from a checkpoint
    if checkpoint is not None:
        load_official(model, checkpoint, checkpoint_source)
    if conversion is not None:
        if features_only:
            raise ValueError("conversion= builds a classifier; it cannot be combined with features_only=True")
        conversion = check_conversion(conversion)
        convert_model(model, conversion["T"], family=MODELS.meta(name).get("family"), signed=conversion["signed"])
        model.model_args["conversion"] = conversion
    if features_only:
        model = FeatureBackbone(model, out_indices if out_indices is not None else range(-3, 0))
        model.model_name, model.model_args = name, {**model.model.model_args, "features_only": True,
                                                    "out_indices": tuple(model.out_indices)}
    return model


def list_models(pattern: str = "*") -> List[str]:
    return MODELS.names(pattern)


def model_info(name: str) -> Dict[str, Any]:
    return MODELS.meta(name)


def count_parameters(name_or_model, **overrides: Any) -> int:
    """Parameter count; a name is built on the meta device (no memory, instant)."""
    if isinstance(name_or_model, nn.Module):
        return sum(p.numel() for p in name_or_model.parameters())
    with torch.device("meta"):
        model = create_model(name_or_model, **overrides)
    return sum(p.numel() for p in model.parameters())
