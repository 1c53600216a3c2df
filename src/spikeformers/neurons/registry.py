"""`create_neuron(name, **opts)`: neurons by name, with strict keyword checking."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Union

from .._registry import Registry, accepted_kwargs, check_options
from .adaptive import ASNNode
from .base import Neuron
from .lif import IFNode, LIFNode, PLIFNode
from .quant import QuantNode
from .multilevel import BipolarNode, IdentityNode, IntegerNode, ReLUNode, TernaryNode

__all__ = ["NEURONS", "create_neuron", "list_neurons", "register_neuron", "neuron_factory"]

NEURONS = Registry("neuron")
register_neuron = NEURONS.register

NEURONS.register("if")(IFNode)
NEURONS.register("lif")(LIFNode)
NEURONS.register("plif")(PLIFNode)
NEURONS.register("ternary")(TernaryNode)
NEURONS.register("bipolar")(BipolarNode)
NEURONS.register("asn")(ASNNode)
NEURONS.register("ilif")(IntegerNode)
NEURONS.register("quant")(QuantNode)
NEURONS.register("relu")(ReLUNode)
NEURONS.register("identity")(IdentityNode)


def create_neuron(name: Union[str, type], **opts: Any) -> Neuron:
    """Build a neuron by registry name (or class) with explicit options.

    Unknown names and unknown options raise ValueError listing the valid ones, e.g.
    `create_neuron("lif", tau=3.0, surrogate="atan", alpha=2.0)`.
    """
    cls = NEURONS.get(name) if isinstance(name, str) else name
    check_options(f"neuron {name!r}", cls, opts)
    return cls(**opts)


def neuron_factory(name: Union[str, type], **opts: Any) -> Callable[..., Neuron]:
    """A callable building fresh neurons; per-call keywords override `opts` (e.g. v_threshold=0.5).

    A per-call keyword the neuron does not accept is ignored: a model asks every neuron of an
    attention output for v_threshold=0.5, which a non-spiking ReLU twin has no use for.
    """
    create_neuron(name, **opts)  # fail early on bad names/options
    cls = NEURONS.get(name) if isinstance(name, str) else name
    accepted = accepted_kwargs(cls)

    def make(**override: Any) -> Neuron:
        # internal overrides a neuron has no use for (a ReLU has no threshold) are dropped
        return create_neuron(name, **{**opts, **{k: v for k, v in override.items() if k in accepted}})

    return make


def list_neurons(pattern: str = "*") -> List[str]:
    return NEURONS.names(pattern)
