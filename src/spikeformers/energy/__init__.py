"""Operation counts and energy estimates of spiking models, against their ANN and QANN twins.

    from spikeformers.energy import count_ops, horowitz45, lemaire, energy_report
    counts = count_ops(model, x)                     # hooks, eval mode, no grad; per image
    horowitz45(counts, "fp32").total                 # pJ: 4.6 pJ/MAC, 0.9 pJ/AC
    lemaire(counts).total                            # pJ: ops + addressing + SRAM traffic
    rep = energy_report(model, x); print(rep.table()); rep.write("out/")

Rules, flags and why published numbers differ: docs/energy.md.
"""
from . import handlers  # registers the counters of the library's modules
from . import conversion_counters  # and of converted networks' products (after `handlers`: they take precedence)
from .counter import CountingRules, LayerCount, OpCounts, count_ops, register_counter
from .horowitz import PRESETS, Energy, Horowitz45, dense_energy, horowitz45
from .lemaire import LemaireCosts, lemaire, qann_bits
from .report import MODEL_ENERGIES, EnergyReport, energy_report
from .stats import TensorStats, tensor_stats
from .twin import ann_energy, build_ann_twin, count_twin, qann_energy

__all__ = [
    "handlers", "count_ops", "OpCounts", "LayerCount", "CountingRules", "register_counter", "TensorStats", "tensor_stats",
    "horowitz45", "dense_energy", "Horowitz45", "PRESETS", "Energy", "lemaire", "LemaireCosts", "qann_bits",
    "build_ann_twin", "count_twin", "ann_energy", "qann_energy", "energy_report", "EnergyReport", "MODEL_ENERGIES",
]
