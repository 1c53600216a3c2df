"""Building blocks on time-first tensors."""
from .head import ClassifierHead
from .mlp import MembraneMLP, SpikingMLP
from .speds import SPEDS, SPEDS_LAYOUTS, speds_stage, speds_stem
from .sps import MSSPS, SPS, check_pooling
from .time import ConvBN, LinearBN, fold, unfold

__all__ = [
    "ClassifierHead", "SpikingMLP", "MembraneMLP", "SPS", "MSSPS", "check_pooling", "SPEDS", "SPEDS_LAYOUTS", "speds_stem",
    "speds_stage", "ConvBN", "LinearBN", "fold", "unfold",
]
