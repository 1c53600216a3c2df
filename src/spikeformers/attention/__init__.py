"""Spiking attention variants behind one interface (`forward`, `project`) and a registry."""
from .a2os2a import A2OS2A
from .adaptive import AdaptiveAttention, NonzeroSoftmaxProduct
from .base import (ATTENTIONS, AttentionProduct, AxisSum, CausalLinearProduct, Hadamard, SoftmaxProduct, SpikingAttention,
                   create_attention, list_attentions, merge_heads, register_attention, split_heads, unused_parameter_names)
from .bipolar import BipolarAttention
from .qk import QKChannelAttention, QKTokenAttention
from .sdsa import SDSA
from .semm import SEMM
from .shiftmax import Shiftmax, ShiftmaxProduct, shiftmax
from .softmax import SoftmaxAttention
from .ssa import SSA

__all__ = [
    "ATTENTIONS", "AttentionProduct", "AxisSum", "CausalLinearProduct", "Hadamard", "SoftmaxProduct", "SpikingAttention",
    "create_attention", "list_attentions", "merge_heads", "register_attention", "split_heads", "unused_parameter_names",
    "SSA", "A2OS2A", "SoftmaxAttention", "SDSA", "QKTokenAttention", "QKChannelAttention", "BipolarAttention", "SEMM",
    "AdaptiveAttention", "NonzeroSoftmaxProduct", "Shiftmax", "ShiftmaxProduct", "shiftmax",
]
