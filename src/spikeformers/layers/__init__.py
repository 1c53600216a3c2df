"""Building blocks on time-first tensors."""
from .head import ClassifierHead
from .mlp import SpikingMLP
from .sps import SPS, check_pooling
from .time import ConvBN, LinearBN, fold, unfold

__all__ = ["ClassifierHead", "SpikingMLP", "SPS", "check_pooling", "ConvBN", "LinearBN", "fold", "unfold"]
