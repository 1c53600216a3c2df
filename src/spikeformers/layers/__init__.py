"""Building blocks on time-first tensors."""
from .head import ClassifierHead
from .mlp import SpikingMLP
from .sps import SPS, check_pooling
from .sps1d import SPS1d, check_strides
from .time import ConvBN, LinearBN, fold, unfold

__all__ = ["ClassifierHead", "SpikingMLP", "SPS", "check_pooling", "SPS1d", "check_strides", "ConvBN", "LinearBN", "fold", "unfold"]
