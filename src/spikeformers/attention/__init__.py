"""Spiking attention variants behind one interface (`forward`, `project`) and a registry."""
from .a2os2a import A2OS2A
from .base import (ATTENTIONS, AttentionProduct, Hadamard, SoftmaxProduct, SpikingAttention, create_attention, list_attentions, merge_heads,
                   register_attention, split_heads)
from .softmax import SoftmaxAttention
from .ssa import SSA

__all__ = [
    "ATTENTIONS", "AttentionProduct", "Hadamard", "SoftmaxProduct", "SpikingAttention", "create_attention", "list_attentions", "merge_heads",
    "register_attention", "split_heads", "SSA", "A2OS2A", "SoftmaxAttention",
]
