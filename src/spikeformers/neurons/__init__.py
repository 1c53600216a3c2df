"""Spiking neurons (multi-step, time-first, stateless per call) and surrogate gradients."""
from .adaptive import ASNNode, expand_to_spikes, integer_fire
from .base import DOMAINS, Neuron, SpikingNeuron
from .homeostasis import Homeostatic
from .lif import IFNode, LIFNode, PLIFNode
from .multilevel import BipolarNode, IdentityNode, IntegerNode, ReLUNode, TernaryNode
from .quant import QuantNode, quantize_levels
from .registry import NEURONS, create_neuron, list_neurons, neuron_factory, register_neuron
from .surrogate import (ATan, Rectangle, Sigmoid, StraightThrough, Surrogate, Triangle, create_surrogate,
                        heaviside, list_surrogates)

__all__ = [
    "DOMAINS", "Neuron", "SpikingNeuron", "IFNode", "LIFNode", "PLIFNode", "TernaryNode", "BipolarNode", "IntegerNode", "ReLUNode",
    "IdentityNode", "QuantNode", "quantize_levels", "ASNNode", "expand_to_spikes", "integer_fire", "Homeostatic", "NEURONS", "create_neuron",
    "list_neurons", "neuron_factory", "register_neuron",
    "Surrogate", "Sigmoid", "ATan", "Triangle", "Rectangle", "StraightThrough", "create_surrogate",
    "list_surrogates", "heaviside",
]
