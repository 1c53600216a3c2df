"""Building blocks on time-first tensors."""
from .head import ClassifierHead
from .emsp import EMSP
from .mlp import MLPS, SpikingMLP, create_mlp
from .sps import SPS, check_pooling
from .time import ConvBN, LinearBN, fold, unfold

__all__ = ["ClassifierHead", "SpikingMLP", "EMSP", "MLPS", "create_mlp", "SPS", "check_pooling", "ConvBN", "LinearBN", "fold",
           "unfold"]
