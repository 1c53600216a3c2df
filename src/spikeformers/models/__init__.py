"""Model families and the registry."""
from . import spikformer  # noqa: F401  (registers the Spikformer variants)
from . import sequence  # noqa: F401  (registers the sequence Spikformer variants)
from .registry import MODELS, count_parameters, create_model, list_models, model_info, register_model
from .sequence import SpikformerSeq, SpikformerSeqConfig
from .spikformer import Spikformer, SpikformerConfig

__all__ = ["MODELS", "count_parameters", "create_model", "list_models", "model_info", "register_model",
           "Spikformer", "SpikformerConfig", "SpikformerSeq", "SpikformerSeqConfig"]
