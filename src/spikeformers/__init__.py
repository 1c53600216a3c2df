"""spikeformers: spiking transformers from interchangeable parts, trained and measured fairly.

Importing the package never initialises CUDA.
"""
from .attention import create_attention, list_attentions
from .to_snn import convert_to_snn
from .encoding import create_encoder, list_encoders
from .export import export_onnx
from .models import count_parameters, create_model, from_pretrained, list_models, model_info, save_pretrained
from .version import __version__
from .neurons import create_neuron, create_surrogate, list_neurons, list_surrogates


__all__ = [
    "__version__", "create_model", "list_models", "model_info", "count_parameters", "create_neuron", "list_neurons",
    "create_surrogate", "list_surrogates", "create_attention", "list_attentions", "create_encoder", "list_encoders",
    "save_pretrained", "from_pretrained", "export_onnx", "convert_to_snn",
]
