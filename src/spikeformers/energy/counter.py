"""Operation counting with forward hooks: what ran, on which values, at what cost in MACs and ACs.

    counts = count_ops(model, x)                 # one no-grad forward in eval mode, hooks only
    counts.total_ac, counts.total_mac            # per image
    counts.recount(multi_spike_max=17)           # same measurements, other counting rules

Per layer the hooks record the MAC-equivalent operation count of what ran (conv k^2 H_out W_out C_in
C_out per image and step, linear in*out per token, each attention product in the order that ran,
element-wise products, softmax) and statistics of every input operand (`TensorStats`: measured
domain, firing rate, value mass). The rules (`CountingRules`) then split the operations:

- an operand in {0, a} or {-a, 0, a} (binary or ternary spikes) makes the operation event-driven:
  AC = ops x rate, MAC = 0. With several spiking operands (Q K^T, K^T V, masks) the sparsest one
  drives the events (for two binary operands this is Spikingformer's min(fr_K, fr_V));
- with `multi_spike_max=k`, non-negative integers up to k count as value-weighted events (a value n
  costs n ACs), Spikingformer's `Nspks_max`;
- anything else (the analog first layer, Spikformer's integer residual sums, real K paths) is MAC;
- `first_layer_times_T=False` counts the analog first layer once instead of T times (the papers'
  formula); None decides from the data: once iff its input is identical at every time step. "First
  layer" means every synaptic layer fed by the model's encoded input (one conv in Spikformer; the Q, K
  and V projections of the first block in the language model);
- sums (`AxisSum`) and Shiftmax are additions and shifts: ACs (x rate when their input is spikes);
  softmax and real scalings are MACs.

Neurons are recorded too (state updates per element and step, spikes emitted) for the memory-aware
model; the 45 nm compute model, like the papers, charges only synaptic operations. Module handlers
live in `energy.handlers`; `register_counter` adds one for a new module type.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Type

import torch
from torch import Tensor, nn

from .stats import SPIKE_DOMAINS, TensorStats, tensor_stats

__all__ = ["LayerCount", "OpCounts", "CountingRules", "count_ops", "integer_spikes", "register_counter", "SYNAPTIC_KINDS"]

#: kinds whose operations are synaptic (AC if an operand is spikes, else MAC)
SYNAPTIC_KINDS = ("conv", "linear", "matmul", "hadamard")
#: kinds made of additions and shifts (AC; x rate on spikes) and of real multiplies (MAC)
ADD_KINDS = ("sum", "shiftmax")
MAC_KINDS = ("softmax", "scale")
#: state updates, not operations on activations: neurons and leaky integrators (the causal attention's
#: decaying K^T V), charged by the memory-aware model only, like a LIF membrane's leak
STATE_KINDS = ("neuron", "leak")
# geometry entries that are totals per image (scaled with the counts); the rest are shapes
_ADDITIVE = ("rows", "images", "elements", "out_numel", "scores")


@dataclass(frozen=True)
class CountingRules:
    """The choices papers differ on (docs/energy.md: whether the first layer counts T times, strict binary or multi-spike events)."""

    multi_spike_max: int = 1  # 1: strict binary; k > 1: non-negative integers <= k are k events at most
    first_layer_times_T: Optional[bool] = None  # None: measured (once iff the input repeats over T)

    def __post_init__(self):
        if not isinstance(self.multi_spike_max, int) or self.multi_spike_max < 1:
            raise ValueError(f"multi_spike_max must be an integer >= 1, got {self.multi_spike_max!r}")
        if self.first_layer_times_T not in (None, True, False):
            raise ValueError(f"first_layer_times_T must be True, False or None, got {self.first_layer_times_T!r}")


@dataclass
class LayerCount:
    """One counted operation (a module, or one product inside an attention module), per image.

    ops: dense MAC-equivalent operations over every time step. operands: measured inputs by label.
    output: what a neuron emitted. steps: how many times it ran per image (T; 1 for a first layer
    counted once). geometry: shapes the memory-aware model needs (see `energy.lemaire`).
    ac / mac / event / analog_first are set by the counting rules.
    """

    name: str
    kind: str
    ops: float
    operands: Dict[str, TensorStats]
    geometry: Dict[str, Any]
    steps: float
    output: Optional[TensorStats] = None
    ac: float = 0.0
    mac: float = 0.0
    event: Optional[str] = None
    analog_first: bool = False

    def scaled(self, f: float, steps: bool = True) -> "LayerCount":
        """Every count times f (and the steps too unless `steps=False`: per-image normalisation)."""
        geo = {k: (v * f if k in _ADDITIVE else v) for k, v in self.geometry.items()}
        return replace(self, ops=self.ops * f, operands={k: s.scaled(f) for k, s in self.operands.items()},
                       output=self.output.scaled(f) if self.output is not None else None, geometry=geo,
                       steps=self.steps * f if steps else self.steps, ac=self.ac * f, mac=self.mac * f)

    @property
    def domain(self) -> str:
        """Input domain(s) as text: 'binary', or 'binary x integer' for a product of two operands."""
        return " x ".join(s.domain for s in self.operands.values()) or "-"

    @property
    def rate(self) -> Optional[float]:
        """Firing rate of the event operand, else of the single operand (None if several and dense)."""
        if self.event is not None:
            return self.operands[self.event].rate
        if len(self.operands) == 1:
            s = next(iter(self.operands.values()))
            return s.rate if s.known else None
        return None

    def to_dict(self) -> Dict[str, Any]:
        d = {"name": self.name, "kind": self.kind, "ops": self.ops, "ac": self.ac, "mac": self.mac,
             "event_operand": self.event, "analog_first": self.analog_first, "steps": self.steps,
             "input_domain": self.domain, "rate": self.rate,
             "operands": {k: s.to_dict() for k, s in self.operands.items()}, "geometry": dict(self.geometry)}
        if self.output is not None:
            d["output"] = self.output.to_dict()
        return d


def _spiking(s: TensorStats, k: int) -> bool:
    return s.known and (s.domain in SPIKE_DOMAINS or (k > 1 and s.is_multi_spike(k)))


def apply_rules(layer: LayerCount, rules: CountingRules) -> LayerCount:
    """AC/MAC of one layer under the rules (the first-layer scaling is done by `OpCounts`)."""
    layer = replace(layer, ac=0.0, mac=0.0, event=None)
    spiking = [(s.events_per_element, label) for label, s in layer.operands.items() if _spiking(s, rules.multi_spike_max)]
    if layer.kind in SYNAPTIC_KINDS + ("sum",) and spiking:
        epe, label = min(spiking)  # event-driven on the sparsest spiking operand
        layer.event, layer.ac = label, layer.ops * epe
    elif layer.kind in SYNAPTIC_KINDS + MAC_KINDS:
        layer.mac = layer.ops
    elif layer.kind in ADD_KINDS:
        layer.ac = layer.ops
    return layer


@dataclass
class OpCounts:
    """Per-image counts of one model on one batch, with the rules applied (`layers`)."""

    layers: List[LayerCount]
    raw: List[LayerCount]  # as measured (every time step), before the rules
    T: int
    batch_size: int
    rules: CountingRules
    first_input_repeated: Optional[bool] = None  # the analog first layer saw the same input at every step
    model_name: Optional[str] = None
    spikes_per_step: int = 1  # D of integer-valued neurons (I-LIF): spikes one neuron may emit per step

    @property
    def levels(self) -> int:
        """Spikes an activation may carry over the whole run (T binary steps, or T steps of up to D)."""
        return self.T * self.spikes_per_step

    @classmethod
    def build(cls, raw: List[LayerCount], T: int, batch_size: int, rules: CountingRules,
              first_input_repeated: Optional[bool] = None, model_name: Optional[str] = None,
              spikes_per_step: int = 1) -> "OpCounts":
        layers = [apply_rules(l, rules) for l in raw]
        times_T = rules.first_layer_times_T
        if times_T is None:
            times_T = not first_input_repeated
        for i, l in enumerate(layers):
            if l.geometry.get("first_input") and l.event is None:  # fed by the analog model input
                layers[i] = l if times_T or T == 1 else l.scaled(1.0 / T)
                layers[i].analog_first = True
        return cls(layers, raw, T, batch_size, rules, first_input_repeated, model_name, spikes_per_step)

    def recount(self, **rules: Any) -> "OpCounts":
        """The same measurements under other rules (multi_spike_max, first_layer_times_T)."""
        return OpCounts.build(self.raw, self.T, self.batch_size, replace(self.rules, **rules),
                              self.first_input_repeated, self.model_name, self.spikes_per_step)

    def with_rates(self, rates: Mapping[str, float]) -> "OpCounts":
        """Counts with given firing rates instead of measured ones (binary spikes at that rate).

        Keys: "LAYER:OPERAND" (e.g. "blocks.0.attn.product.kv:k"), or "LAYER" for a layer with one
        operand and for a neuron's output. Works on shape-only (meta) counts: no forward needed.
        """
        used, raw = set(), []
        for l in self.raw:
            ops = dict(l.operands)
            for label, s in l.operands.items():
                for key in (f"{l.name}:{label}",) + ((l.name,) if len(ops) == 1 else ()):
                    if key in rates:
                        ops[label] = TensorStats.spikes(s.numel, _check_rate(key, rates[key]))
                        used.add(key)
            out = l.output
            if l.kind == "neuron" and l.name in rates:
                out = TensorStats.spikes(l.output.numel, _check_rate(l.name, rates[l.name]))
                used.add(l.name)
            raw.append(replace(l, operands=ops, output=out))
        unknown = sorted(set(rates) - used)
        if unknown:
            raise ValueError(f"with_rates: no layer operand named {', '.join(map(repr, unknown))}; "
                             f"valid keys look like {self.rate_keys()[:3]}")
        return OpCounts.build(raw, self.T, self.batch_size, self.rules, self.first_input_repeated, self.model_name,
                              self.spikes_per_step)

    def rate_keys(self) -> List[str]:
        keys = []
        for l in self.raw:
            keys += [l.name] if len(l.operands) == 1 or l.kind == "neuron" else [f"{l.name}:{k}" for k in l.operands]
        return keys

    # --- totals (per image) ----------------------------------------------------------------------
    def layer(self, name: str) -> LayerCount:
        for l in self.layers:
            if l.name == name:
                return l
        raise KeyError(f"no counted layer {name!r}; layers: {', '.join(l.name for l in self.layers)}")

    @property
    def synaptic(self) -> List[LayerCount]:
        """Operations (synaptic, additions, real multiplies), not state updates."""
        return [l for l in self.layers if l.kind not in STATE_KINDS]

    @property
    def neurons(self) -> List[LayerCount]:
        return [l for l in self.layers if l.kind == "neuron"]

    @property
    def total_ops(self) -> float:
        return sum(l.ops for l in self.synaptic)

    @property
    def total_ac(self) -> float:
        return sum(l.ac for l in self.layers)

    @property
    def total_mac(self) -> float:
        return sum(l.mac for l in self.layers)

    @property
    def neuron_updates(self) -> float:
        return sum(l.geometry["elements"] for l in self.neurons)

    @property
    def spiking(self) -> bool:
        """True if any synaptic operation was event-driven."""
        return any(l.event is not None for l in self.layers)

    def to_dict(self) -> Dict[str, Any]:
        return {"model": self.model_name, "T": self.T, "batch_size": self.batch_size,
                "rules": {"multi_spike_max": self.rules.multi_spike_max,
                          "first_layer_times_T": self.rules.first_layer_times_T},
                "first_input_repeated": self.first_input_repeated,
                "totals": {"ops": self.total_ops, "ac": self.total_ac, "mac": self.total_mac,
                           "neuron_updates": self.neuron_updates},
                "layers": [l.to_dict() for l in self.layers]}


def _check_rate(key: str, r: float) -> float:
    r = float(r)
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"with_rates: rate of {key!r} must be in [0, 1], got {r}")
    return r


# --- hooks ------------------------------------------------------------------------------------------
Handler = Callable[["_Collector", str, nn.Module, Tuple[Any, ...], Any], None]
_HANDLERS: List[Tuple[Tuple[Type[nn.Module], ...], Handler, bool]] = []


def register_counter(*types: Type[nn.Module], covers_children: bool = False) -> Callable[[Handler], Handler]:
    """Decorator: count modules of these types with `handler(collector, name, module, inputs, output)`.

    covers_children: the handler accounts for everything inside the module (its submodules get no
    hooks). Later registrations take precedence, so a new attention module can bring its own counter.
    """

    def deco(fn: Handler) -> Handler:
        _HANDLERS.insert(0, (types, fn, covers_children))
        return fn

    return deco


def _handler_for(m: nn.Module) -> Tuple[Optional[Handler], bool]:
    for types, fn, covers in _HANDLERS:
        if isinstance(m, types):
            return fn, covers
    return None, False


class _Collector:
    """Accumulates raw counts over calls, keyed by name in first-call order."""

    def __init__(self):
        self.entries: Dict[str, LayerCount] = {}
        self.first_neuron_shape: Optional[Tuple[int, ...]] = None
        self.first_synaptic_input: Optional[Tensor] = None
        self._recent: List[Tuple[tuple, Tensor, TensorStats]] = []  # Q, K and V projections share x
        self._first_key: Optional[tuple] = None
        self._first_ref: Optional[Tensor] = None

    def stats(self, t: Tensor) -> TensorStats:
        if t.device.type == "meta":
            return tensor_stats(t)
        key = (t.data_ptr(), tuple(t.shape), tuple(t.stride()), t.dtype, t.device, t._version)
        for k, _, s in self._recent:
            if k == key:
                return s
        s = tensor_stats(t)
        self._recent = [(key, t, s)] + self._recent[:3]  # the reference keeps the memory from reuse
        return s

    def add(self, name: str, kind: str, ops: float, operands: Dict[str, Tensor | TensorStats],
            geometry: Dict[str, Any], output: Optional[Tensor] = None) -> None:
        stats = {k: (v if isinstance(v, TensorStats) else self.stats(v)) for k, v in operands.items()}
        out = self.stats(output) if output is not None else None
        old = self.entries.get(name)
        if old is None:
            self.entries[name] = LayerCount(name, kind, float(ops), stats, dict(geometry), 0.0, out)
            return
        old.ops += float(ops)
        old.operands = {k: old.operands[k].merge(s) for k, s in stats.items()}
        if out is not None:
            old.output = old.output.merge(out) if old.output is not None else out
        for k in _ADDITIVE:
            if k in geometry:
                old.geometry[k] = old.geometry.get(k, 0) + geometry[k]

    def is_first_input(self, x: Tensor) -> bool:
        """Is x the input of the first synaptic layer (the encoded model input)? Remembers the first."""
        key = (x.data_ptr(), tuple(x.shape), tuple(x.stride()), x.device)
        if self._first_key is None:
            self._first_key, self._first_ref = key, x  # the reference keeps the address from reuse
            self.first_synaptic_input = x.detach().clone() if x.device.type != "meta" else x
            return True
        return key == self._first_key and x.device.type != "meta" or x is self._first_ref


def _repeated_over_T(x: Optional[Tensor], T: int) -> Optional[bool]:
    """Is x ([T*B, ...]) the same tensor at every one of T steps (direct encoding)?"""
    if x is None or x.device.type == "meta":
        return None
    if T <= 1:
        return True
    if x.shape[0] % T:
        return False
    xt = x.reshape(T, -1)
    return bool((xt == xt[:1]).all())


@torch.no_grad()
def integer_spikes(model: nn.Module) -> int:
    """D: the largest spike count an integer-valued neuron of `model` emits per step (1 if none)."""
    return max([int(getattr(m, "max_spikes", 1)) for m in model.modules()
                if getattr(m, "domain", None) == "integer" and hasattr(m, "max_spikes")] + [1])


def count_ops(model: nn.Module, x: Any, *, multi_spike_max: Optional[int] = None, first_layer_times_T: Optional[bool] = None,
              T: Optional[int] = None, batch_size: Optional[int] = None) -> OpCounts:
    """Run `model(x)` once (eval mode, no grad) with counting hooks; return per-image counts.

    `multi_spike_max` None: D of the model's integer-valued neurons (`integer_spikes`; 1, strict binary,
    for a model of binary neurons), so an integer spike count n costs n events, as emitted at inference.

    T and the batch size are read from the first neuron's input `[T, B, ...]` (override with `T`,
    `batch_size`); without neurons T = 1 and the batch is `x.shape[0]`. `x` may live on the meta
    device: then only shapes are counted (every domain "unknown", counted as MAC; the first layer is
    charged at every step unless `first_layer_times_T=False`) and `with_rates` can supply firing rates.
    """
    D = integer_spikes(model)
    rules = CountingRules(D if multi_spike_max is None else multi_spike_max, first_layer_times_T)
    col = _Collector()
    handles, covered = [], []
    for name, m in model.named_modules():
        if any(name.startswith(c + ".") for c in covered):
            continue
        fn, covers = _handler_for(m)
        if fn is not None:
            handles.append(m.register_forward_hook(lambda mod, inp, out, _n=name, _f=fn: _f(col, _n, mod, inp, out)))
            if covers:
                covered.append(name)
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    shape = col.first_neuron_shape
    T = int(T if T is not None else (shape[0] if shape else 1))
    B = int(batch_size if batch_size is not None else (shape[1] if shape and len(shape) > 1 else _leading(x)))
    raw = []
    for e in col.entries.values():
        if e.kind != "neuron":
            e.steps = _steps(e.geometry.pop("lead", None), T, B)
        raw.append(e.scaled(1.0 / B, steps=False))
    return OpCounts.build(raw, T, B, rules, _repeated_over_T(col.first_synaptic_input, T),
                          getattr(model, "model_name", type(model).__name__), D)


def _steps(lead: Optional[Tuple[int, ...]], T: int, B: int) -> int:
    """Time steps a stateless layer ran for, from its input's leading dims: [T*B, ...] (folded) or
    [T, B, ...] -> T; [B, ...] or [1, B, ...] (after a mean over T, e.g. a language-model head) -> 1."""
    if not lead or T == 1:
        return T
    if lead[0] == T * B or lead[:2] == (T, B):
        return T
    if lead[0] == B or lead[:2] == (1, B):
        return 1
    return T


def _leading(x: Any) -> int:
    return int(x.shape[0]) if hasattr(x, "shape") and len(x.shape) else 1
