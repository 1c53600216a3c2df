"""spikeformers: spiking transformers from interchangeable parts, trained and measured fairly.

Importing the package never initialises CUDA.
"""
from .attention import create_attention, list_attentions
from .conversion.run import convert_to_snn
from .encoding import create_encoder, list_encoders
from .export import export_onnx, from_pretrained, save_pretrained
from .models import count_parameters, create_model, list_models, model_info
from .neurons import create_neuron, create_surrogate, list_neurons, list_surrogates

__version__ = "0.1.0"

__all__ = [
    "__version__", "create_model", "list_models", "model_info", "count_parameters", "create_neuron", "list_neurons",
    "create_surrogate", "list_surrogates", "create_attention", "list_attentions", "create_encoder", "list_encoders",
    "save_pretrained", "from_pretrained", "export_onnx", "convert_to_snn",
]
