"""Model families and the registry."""
from . import dense, lm, qkformer, sdt, sequence, spikegpt, spikformer  # noqa: F401  (registers the variants)
from . import footprint
from .dense import DenseConfig, FCOSDetector, FPNSegmenter
from .features import FeatureBackbone
from .hub import convert_file, from_pretrained, save_pretrained
from .lm import LMState, SpikingLM, SpikingLMConfig
from .qkformer import QKFormer, QKFormerConfig
from .registry import MODELS, count_parameters, create_model, list_models, model_info, register_model
from .sdt import SDTConfig, SpikeDrivenTransformer
from .spikegpt import SpikeGPT, SpikeGPTConfig
from .sequence import SpikformerSeq, SpikformerSeqConfig
from .spikformer import Spikformer, SpikformerConfig

__all__ = ["MODELS", "count_parameters", "create_model", "list_models", "model_info", "register_model",
           "Spikformer", "SpikformerConfig", "SpikeDrivenTransformer", "SDTConfig", "QKFormer", "QKFormerConfig",
           "SpikingLM", "SpikingLMConfig", "LMState", "SpikeGPT", "SpikeGPTConfig", "SpikformerSeq", "SpikformerSeqConfig",
           "DenseConfig",
           "FPNSegmenter", "FCOSDetector", "FeatureBackbone", "save_pretrained", "from_pretrained", "convert_file",
           "footprint"]
