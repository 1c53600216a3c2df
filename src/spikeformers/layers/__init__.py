"""Building blocks on time-first tensors."""
from .emsp import EMSP
from .head import ClassifierHead
from .mlp import MLPS, MembraneMLP, SpikingMLP, create_mlp
from .speds import SPEDS, SPEDS_LAYOUTS, speds_stage, speds_stem
from .sps import MSSPS, SPS, check_pooling
from .sps1d import SPS1d, check_strides
from .time import ConvBN, LinearBN, fold, unfold

__all__ = [
    "ClassifierHead", "SpikingMLP", "MembraneMLP", "EMSP", "MLPS", "create_mlp", "SPS", "MSSPS", "check_pooling", "SPEDS",
    "SPEDS_LAYOUTS", "speds_stem", "speds_stage", "SPS1d", "check_strides", "ConvBN", "LinearBN", "fold", "unfold",
]
