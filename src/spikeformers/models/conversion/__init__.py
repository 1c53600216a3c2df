"""ANN-to-SNN conversion: a quantized ANN (`twin="qann_sa"`) turned into the spiking network that is equivalent
to it (docs/conversion.md).

    snn = spikeformers.convert_to_snn(qann_model_or_run_dir, T=32)       # the public entry (to_snn.py)
    create_model("spikformer_tiny", twin="qann_sa", T=4, conversion={"T": 32})   # the same network, rebuilt

This package holds the converted network's parts and the transformation (within the models' layer:
`create_model` rebuilds a converted model through `convert_model`). `spikeformers/to_snn.py`, which reads and
writes run folders, sits above training and energy.
"""
from .convert import ATTENTIONS, CONVERSION_KEYS, FAMILIES, check_conversion, convert_model
from .layers import PulseEncoder, StepConv, StepLinear, SumReadout, fold_batchnorm
from .neurons import STBIFNode
from .products import AccumulatedHadamard, AccumulatedMaxPool, AccumulatedProduct, running_sums

__all__ = [
    "convert_model", "check_conversion", "FAMILIES", "ATTENTIONS", "CONVERSION_KEYS", "PulseEncoder", "StepConv",
    "StepLinear", "SumReadout", "fold_batchnorm", "STBIFNode", "AccumulatedHadamard", "AccumulatedMaxPool",
    "AccumulatedProduct", "running_sums",
]
