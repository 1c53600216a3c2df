"""`convert_model(qann, T)`: a trained QANN (`twin="qann_sa"`) turned, in place, into its equivalent spiking
network of T steps.

    quantized ReLU (QuantNode)        -> ST-BIF neuron, threshold = the learned step, L = levels (neurons.py)
    Linear/conv + BatchNorm           -> one layer, BatchNorm folded, bias at step 0 (layers.py)
    the classifier Linear             -> SumReadout (the model's mean over T is then the summed logits)
    attention product Q K^T V         -> accumulate-and-correct (products.py)
    masks a (.) b (QKFormer, SDSA)    -> accumulate-and-correct
    max-pool                          -> pool of the running sums, differenced
    sums over tokens or channels, means, residual additions   unchanged (linear)
    the direct encoder                -> PulseEncoder(T): the image once, at step 0

What is not linear and has no spike-equivalent form here (softmax, LayerNorm, causal products, SEMM's expert
routing, SDSA's erode pools) is refused with the part named, never approximated: `twin="qann"` (softmax
attention) does not convert; `twin="qann_sa"` keeps the spiking attention's product form with quantized
Q, K, V and converts exactly. Families: Spikformer, QKFormer, Spike-driven Transformer (their block and
model classes only wire modules together: residual additions, token means, reshapes).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from torch import nn

from ...attention.base import AttentionProduct, AxisSum, Hadamard, SpikingAttention
from ...attention.qk import QKChannelAttention, QKTokenAttention
from ...attention.sdsa import SDSA
from ...attention.ssa import SSA
from ...encoding import Encoder
from ...layers.head import ClassifierHead
from ...layers.mlp import MembraneMLP, SpikingMLP
from ...layers.speds import SPEDS
from ...layers.sps import MSSPS, SPS
from ...layers.time import ConvBN, LinearBN
from ...neurons.quant import QuantNode
from .layers import PulseEncoder, StepConv, StepLinear, SumReadout, fold_batchnorm
from .neurons import STBIFNode
from .products import AccumulatedHadamard, AccumulatedMaxPool, AccumulatedProduct

__all__ = ["convert_model", "check_conversion", "FAMILIES", "ATTENTIONS", "CONVERSION_KEYS"]

#: model families whose QANN converts, and the attentions that have an exact spiking form
FAMILIES = ("spikformer", "qkformer", "sdt")
ATTENTIONS = (SSA, QKTokenAttention, QKChannelAttention, SDSA)
#: the options of `conversion=` (create_model) and their meaning
CONVERSION_KEYS = {"T": "time steps of the spiking network", "signed": "ST-BIF (True) or QCFS IF neurons (False)"}
#: layer containers whose forward only wires converted parts together (linear)
_CONTAINERS = (nn.ModuleList, nn.Sequential, SPS, MSSPS, SPEDS, SpikingMLP, MembraneMLP, ClassifierHead)
_KEEP = (nn.Identity, nn.Dropout, AxisSum)


def check_conversion(conversion: Any) -> Dict[str, Any]:
    """The `conversion=` option, checked: {"T": int >= 1, "signed": bool (default True)}."""
    if not isinstance(conversion, dict):
        raise ValueError(f"conversion must be a mapping like {{'T': 32}}, got {conversion!r}")
    bad = sorted(set(conversion) - set(CONVERSION_KEYS))
    if bad:
        raise ValueError(f"unknown conversion option(s) {', '.join(map(repr, bad))}; valid: "
                         + "; ".join(f"{k} ({v})" for k, v in CONVERSION_KEYS.items()))
    T, signed = conversion.get("T"), conversion.get("signed", True)
    if not isinstance(T, int) or isinstance(T, bool) or T < 1:
        raise ValueError(f"conversion T must be a positive integer (time steps), got {T!r}")
    if not isinstance(signed, bool):
        raise ValueError(f"conversion signed must be true or false, got {signed!r}")
    return {"T": T, "signed": signed}


def convert_model(model: nn.Module, T: int, *, family: Optional[str], signed: bool = True) -> nn.Module:
    """Convert `model` (a QANN of a registered `family`, built with twin="qann_sa", in eval-mode weights) in
    place into its spiking equivalent of `T` steps; returns it. Raises ValueError naming what cannot convert."""
    opts = check_conversion({"T": T, "signed": signed})
    if family not in FAMILIES:
        raise ValueError(f"conversion covers the model families {', '.join(FAMILIES)}; "
                         f"{getattr(model, 'model_name', type(model).__name__)} is {family!r}")
    cfg = getattr(model, "cfg", None)
    if getattr(cfg, "twin", None) != "qann_sa":
        hint = " (its softmax attention has no exact spiking form)" if getattr(cfg, "twin", None) == "qann" else ""
        raise ValueError(f"conversion needs a QANN built with twin='qann_sa' (quantized ReLUs, spiking attention "
                         f"form); this model has twin={getattr(cfg, 'twin', None)!r}{hint}")
    if not isinstance(getattr(model, "encoder", None), Encoder) or type(model.encoder).__name__ != "DirectEncoder":
        raise ValueError("conversion needs the direct encoder (the QANN sees the image once)")
    _Converter(opts["T"], opts["signed"]).children_of(model, "")
    model.encoder = PulseEncoder(opts["T"])
    cfg.T = opts["T"]
    model.conversion = opts
    return model


class _Converter:
    def __init__(self, T: int, signed: bool):
        self.T, self.signed = T, signed

    def children_of(self, parent: nn.Module, prefix: str) -> None:
        unused = {p.split(".")[0] for p in getattr(parent, "unused_parameters", ())}
        for name, child in list(parent.named_children()):
            path = f"{prefix}{name}"
            if name == "encoder" and isinstance(child, Encoder) or name in unused:
                continue  # the encoder is swapped by convert_model; unused parameters stay as they are
            new = self.convert(parent, child, path)
            if new is not None:
                setattr(parent, name, new)
            else:
                self.children_of(child, path + ".")

    def convert(self, parent: nn.Module, m: nn.Module, path: str) -> Optional[nn.Module]:
        """The replacement of `m`, or None to keep it and convert its children."""
        if isinstance(m, QuantNode):
            theta = m.step_size.detach().abs() + 1e-8  # the quantizer's own step, in its dtype
            return STBIFNode(threshold=theta, levels=m.levels, signed=self.signed)
        if isinstance(m, LinearBN):
            return StepLinear(*fold_batchnorm(m.linear.weight, m.linear.bias, m.bn))
        if isinstance(m, ConvBN):
            return StepConv(m.conv, *fold_batchnorm(m.conv.weight, m.conv.bias, m.bn))
        if isinstance(m, nn.Linear) and isinstance(parent, ClassifierHead):
            return SumReadout(*fold_batchnorm(m.weight, m.bias, None))
        if type(m) is AttentionProduct:
            return AccumulatedProduct(m.scale, m.order)
        if type(m) is Hadamard:
            return AccumulatedHadamard()
        if isinstance(m, nn.MaxPool2d):
            if m.ceil_mode or m.dilation not in (1, (1, 1)) or m.return_indices:
                raise ValueError(f"cannot convert {path}: a max-pool with ceil_mode, dilation or indices")
            return AccumulatedMaxPool(m.kernel_size, m.stride, m.padding, self.T)
        if isinstance(m, SpikingAttention):
            if type(m) not in ATTENTIONS:
                raise ValueError(f"cannot convert {path}: attention {type(m).__name__} has no exact spiking form here; "
                                 f"convertible: {', '.join(a.__name__ for a in ATTENTIONS)}")
            if getattr(m, "causal", False) or getattr(m, "erode", None) is not None or m.norm != "batch":
                raise ValueError(f"cannot convert {path}: causal products, SDSA's erode pools and per-token norms "
                                 f"have no exact spiking form here")
            return None
        if isinstance(m, _KEEP):
            return m
        if isinstance(m, _CONTAINERS) or _model_class(m):
            return None
        raise ValueError(f"cannot convert {path}: {type(m).__name__} has no spike-equivalent form here "
                         f"(see docs/conversion.md for what converts)")


def _model_class(m: nn.Module) -> bool:
    """A block or model class of a supported family (defined in the models package): it wires modules."""
    root = __name__.split(".")[0]
    return type(m).__module__.startswith(f"{root}.models.") and any(True for _ in m.children())

