"""The 45 nm compute-only model of every spiking-transformer paper: E = E_MAC * MACs + E_AC * ACs.

Energies per operation (Horowitz, ISSCC 2014, 45 nm), as SpikingJelly's `ComputeEnergyCostConfig`:

    fp32          E_MAC 4.6 pJ   E_AC 0.9 pJ    (Spikformer App. C.2, SDT, QKFormer, ...)
    fp16          E_MAC 1.5 pJ   E_AC 0.4 pJ    (FMult16 1.1 + FAdd16 0.4)
    int8          E_MAC 0.23 pJ  E_AC 0.03 pJ   (Mult8 0.2 + Add8 0.03)
    neuromorphic  E_MAC 4.6 pJ   E_AC 0.077 pJ  (77 fJ per synaptic operation, the cost behind
                                                 Spikformer v1's OpenReview numbers; MACs, which a
                                                 neuromorphic core cannot run, stay at fp32)

Only synaptic operations are charged (neuron updates and memory traffic are not: that is what the
memory-aware `lemaire` model adds).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Union

from .counter import OpCounts

__all__ = ["Horowitz45", "PRESETS", "Energy", "horowitz45", "dense_energy"]

PRESETS: Dict[str, tuple] = {
    "fp32": (4.6, 0.9),
    "fp16": (1.5, 0.4),
    "int8": (0.23, 0.03),
    "neuromorphic": (4.6, 0.077),
}


@dataclass(frozen=True)
class Horowitz45:
    """Energy per MAC and per AC, in pJ."""

    e_mac: float = 4.6
    e_ac: float = 0.9
    name: str = "fp32"

    @classmethod
    def preset(cls, name: str) -> "Horowitz45":
        if name not in PRESETS:
            raise ValueError(f"unknown energy preset {name!r}; valid presets: {', '.join(PRESETS)}")
        e_mac, e_ac = PRESETS[name]
        return cls(e_mac, e_ac, name)


@dataclass
class Energy:
    """Energy per image of each layer, split in components (pJ); `total` sums them."""

    model: str
    layers: Dict[str, Dict[str, float]] = field(default_factory=dict)

    def layer_total(self, name: str) -> float:
        return sum(self.layers.get(name, {}).values())

    @property
    def total(self) -> float:
        """pJ per image."""
        return sum(sum(c.values()) for c in self.layers.values())

    def components(self) -> Dict[str, float]:
        out: Dict[str, float] = {}
        for c in self.layers.values():
            for k, v in c.items():
                out[k] = out.get(k, 0.0) + v
        return out

    def to_dict(self) -> Dict:
        return {"model": self.model, "total_pJ": self.total, "components_pJ": self.components(),
                "layers_pJ": {n: sum(c.values()) for n, c in self.layers.items()}}


def horowitz45(counts: OpCounts, preset: Union[str, Horowitz45] = "fp32") -> Energy:
    """E = E_MAC * MAC + E_AC * AC per layer (Horowitz, ISSCC 2014; Spikformer, ICLR 2023, App. C.2)."""
    cost = Horowitz45.preset(preset) if isinstance(preset, str) else preset
    e = Energy(f"horowitz45:{cost.name}")
    for l in counts.synaptic:
        e.layers[l.name] = {"mac": cost.e_mac * l.mac, "ac": cost.e_ac * l.ac}
    return e


def dense_energy(counts: OpCounts, preset: Union[str, Horowitz45] = "fp32") -> Energy:
    """Every operation a MAC (the dense ANN view of the same layers)."""
    cost = Horowitz45.preset(preset) if isinstance(preset, str) else preset
    e = Energy(f"dense:{cost.name}")
    for l in counts.synaptic:
        e.layers[l.name] = {"mac": cost.e_mac * l.ops, "ac": 0.0}
    return e
