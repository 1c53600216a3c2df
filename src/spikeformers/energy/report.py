"""One report per model and batch: counts, the SNN under both energy models, the two baselines.

    rep = energy_report(model, x)                  # x: a batch of real inputs
    print(rep.table()); print(rep.text())
    rep.write("out/")                              # energy.json + energy.png, atomically

Headline numbers (per image): the SNN under the 45 nm compute model against the dense ANN twin
under the same model (the papers' comparison), and the SNN under the memory-aware model against the
QANN twin (the fair one), plus the operation reduction against the dense twin, computed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

from torch import nn

from .counter import LayerCount, OpCounts, count_ops
from .horowitz import PRESETS, Energy, Horowitz45, dense_energy, horowitz45
from .lemaire import LemaireCosts, lemaire, qann_bits
from .twin import build_ann_twin, count_twin, qann_energy
from ..io import atomic_write_json
from .plot import plot_energy

__all__ = ["EnergyReport", "energy_report", "MODEL_ENERGIES", "format_energy", "format_count"]

MODEL_ENERGIES = ("horowitz45", "lemaire")


def format_count(n: float) -> str:
    for unit, f in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= f:
            return f"{n / f:.3g}{unit}"
    return f"{n:.3g}"


def format_energy(pj: float) -> str:
    for unit, f in (("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)):
        if abs(pj) >= f:
            return f"{pj / f:.4g} {unit}"
    return f"{pj:.4g} pJ"


@dataclass
class EnergyReport:
    counts: OpCounts
    snn_horowitz: Energy
    snn_lemaire: Energy
    twin_counts: Optional[OpCounts]
    ann: Optional[Energy]  # dense twin, same preset as the SNN
    ann_fp32: Optional[Energy]  # dense twin, fp32 (the papers' ANN number)
    qann: Optional[Energy]
    model_energy: str = "horowitz45"
    preset: str = "fp32"
    costs: LemaireCosts = field(default_factory=LemaireCosts)
    info: Dict[str, Any] = field(default_factory=dict)  # model, data, batch: for the header and JSON
    notes: List[str] = field(default_factory=list)

    @property
    def snn(self) -> Energy:
        return self.snn_lemaire if self.model_energy == "lemaire" else self.snn_horowitz

    @property
    def mean_firing_rate(self) -> Optional[float]:
        ns = self.counts.neurons
        total = sum(l.output.numel for l in ns)
        return sum(l.output.nnz for l in ns) / total if total else None

    def headline(self) -> Dict[str, Any]:
        """Small dict of per-image numbers (energies in uJ), with a one-paragraph `text`."""
        c, uj = self.counts, 1e-6
        h: Dict[str, Any] = {
            "T": c.T, "spikes_per_step": c.spikes_per_step, "images": c.batch_size, "preset": self.preset,
            "rules": {"multi_spike_max": c.rules.multi_spike_max, "first_layer_times_T": c.rules.first_layer_times_T},
            "snn_uJ": self.snn.total * uj, "snn_model": self.model_energy,
            "snn_horowitz45_uJ": self.snn_horowitz.total * uj, "snn_lemaire_uJ": self.snn_lemaire.total * uj,
            "snn_ac": c.total_ac, "snn_mac": c.total_mac, "snn_dense_ops": c.total_ops,
            "mean_firing_rate": self.mean_firing_rate,
        }
        if self.twin_counts is not None:
            ann_mac = self.twin_counts.total_ops
            h.update({
                "ann_twin_mac": ann_mac, "ann_twin_uJ": self.ann.total * uj, "ann_twin_fp32_uJ": self.ann_fp32.total * uj,
                "qann_uJ": self.qann.total * uj, "qann_act_bits": qann_bits(c.levels), "weight_bits": self.costs.weight_bits,
                "ann_over_snn": _ratio(self.ann.total, self.snn_horowitz.total),
                "qann_over_snn": _ratio(self.qann.total, self.snn_lemaire.total),
                "ops_reduction": 1 - (c.total_ac + c.total_mac) / ann_mac if ann_mac else None,
                "mult_reduction": 1 - c.total_mac / ann_mac if ann_mac else None,
            })
        h["text"] = self.text(h)
        return h

    def text(self, h: Optional[Dict[str, Any]] = None) -> str:
        h = h or self.headline()
        c = self.counts
        steps = f"T={c.T}" + (f", up to {c.spikes_per_step} spikes per step" if c.spikes_per_step > 1 else "")
        sample = f"{self.info['sample']}; " if self.info.get("sample") else ""
        s = (f"Energy per {self.info.get('unit', 'image')} ({sample}{steps}, 45 nm {self.preset}): SNN {format_energy(h['snn_horowitz45_uJ'] * 1e6)} "
             f"({format_count(c.total_mac)} MAC + {format_count(c.total_ac)} AC)")
        if "ann_twin_uJ" in h:
            s += (f" vs dense ANN twin {format_energy(h['ann_twin_uJ'] * 1e6)} ({format_count(h['ann_twin_mac'])} MAC): "
                  f"{_times(h['ann_over_snn'])}. Memory-aware (Lemaire, {self.costs.weight_bits}-bit weights): "
                  f"SNN {format_energy(h['snn_lemaire_uJ'] * 1e6)} vs QANN twin ({h['qann_act_bits']}-bit activations) "
                  f"{format_energy(h['qann_uJ'] * 1e6)}: {_times(h['qann_over_snn'])}. Synaptic operations (AC + MAC) "
                  f"{_fewer(h['ops_reduction'])} than the ANN twin's MACs; multiplications {_fewer(h['mult_reduction'])}.")
        else:
            s += f"; Lemaire memory-aware: {format_energy(h['snn_lemaire_uJ'] * 1e6)}. No ANN twin."
        if h["mean_firing_rate"] is not None:
            s += f" Mean firing rate {100 * h['mean_firing_rate']:.2f}%."
        return " ".join([s] + self.notes)

    # --- table -------------------------------------------------------------------------------
    def rows(self) -> List[LayerCount]:
        return self.counts.layers if self.model_energy == "lemaire" else self.counts.synaptic

    def table(self) -> str:
        e = self.snn
        head = ("layer", "kind", "ops", "input", "rate", "AC", "MAC", f"energy ({self.model_energy})")
        rows = [head]
        for l in self.rows():
            if l.kind == "neuron":
                rate = l.output.rate if l.output.known else None
                rows.append((l.name, "neuron", format_count(l.geometry["elements"]) + " upd",
                             "-> " + l.output.domain, _pct(rate), "", "", format_energy(e.layer_total(l.name))))
                continue
            name = l.name + (" (x1, not xT)" if l.analog_first and l.steps < self.counts.T else "")
            rows.append((name, l.kind, format_count(l.ops), l.domain, _pct(l.rate), format_count(l.ac),
                         format_count(l.mac), format_energy(e.layer_total(l.name))))
        rows.append(("total", "", format_count(self.counts.total_ops), "", _pct(self.mean_firing_rate),
                     format_count(self.counts.total_ac), format_count(self.counts.total_mac), format_energy(e.total)))
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
        right = {2, 4, 5, 6, 7}
        out = []
        for j, r in enumerate(rows):
            if j == len(rows) - 1:
                out.append("  ".join("-" * w for w in widths))
            out.append("  ".join(str(v).rjust(w) if i in right else str(v).ljust(w)
                                 for i, (v, w) in enumerate(zip(r, widths))).rstrip())
            if j == 0:
                out.append("  ".join("-" * w for w in widths))
        return "\n".join(out)

    # --- files -------------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        d = {"info": self.info, "model_energy": self.model_energy, "preset": self.preset,
             "horowitz45": {"e_mac_pJ": PRESETS[self.preset][0], "e_ac_pJ": PRESETS[self.preset][1]},
             "lemaire_costs": vars(self.costs).copy(), "headline": self.headline(), "snn_counts": self.counts.to_dict(),
             "snn_horowitz45": self.snn_horowitz.to_dict(), "snn_lemaire": self.snn_lemaire.to_dict()}
        if self.twin_counts is not None:
            d.update({"ann_twin_counts": self.twin_counts.to_dict(), "ann_twin": self.ann.to_dict(),
                      "ann_twin_fp32": self.ann_fp32.to_dict(), "qann": self.qann.to_dict()})
        return d

    def write(self, out_dir: str) -> Tuple[str, str]:
        """energy.json and energy.png in out_dir (created), each written atomically."""

        os.makedirs(out_dir, exist_ok=True)
        js, png = os.path.join(out_dir, "energy.json"), os.path.join(out_dir, "energy.png")
        atomic_write_json(js, self.to_dict())
        plot_energy(self, png)
        return js, png


def _ratio(a: float, b: float) -> Optional[float]:
    return a / b if b else None


def _times(r: Optional[float]) -> str:
    if r is None:
        return "ratio undefined (zero SNN energy)"
    if abs(r - 1) < 0.005:
        return "about the same"
    return f"{r:.3g}x less" if r >= 1 else f"{1 / r:.3g}x more"


def _fewer(r: Optional[float]) -> str:
    if r is None:
        return "n/a"
    return f"{100 * r:.1f}% fewer" if r >= 0 else f"{-100 * r:.1f}% more"


def _pct(r: Optional[float]) -> str:
    return "" if r is None else f"{100 * r:.2f}%"


def energy_report(model: nn.Module, x: Any, *, model_energy: str = "horowitz45", preset: str = "fp32",
                  multi_spike_max: Optional[int] = None, first_layer_times_T: Optional[bool] = None,
                  twin: Union[str, nn.Module, None] = "auto", weight_bits: int = 8,
                  costs: Optional[LemaireCosts] = None, info: Optional[Dict[str, Any]] = None) -> EnergyReport:
    """Count `model` on the batch `x` and cost it against its ANN and QANN twins.

    twin: "auto" builds `create_model(name, twin="ann")`; a module is used as given; None skips the
    baselines. weight_bits sets the weights of both the SNN and the QANN under the memory model.
    """
    if model_energy not in MODEL_ENERGIES:
        raise ValueError(f"unknown energy model {model_energy!r}; valid: {', '.join(MODEL_ENERGIES)}")
    Horowitz45.preset(preset)  # validate early
    costs = costs or LemaireCosts(weight_bits=weight_bits)
    counts = count_ops(model, x, multi_spike_max=multi_spike_max, first_layer_times_T=first_layer_times_T)
    notes: List[str] = []
    twin_counts = ann = ann32 = q = None
    if isinstance(twin, str):
        if twin != "auto":
            raise ValueError(f"twin must be 'auto', a module or None, got {twin!r}")
        try:
            twin = build_ann_twin(model)
        except (ValueError, TypeError) as err:
            twin = None
            notes.append(f"(No ANN twin: {err}.)")
    if twin is not None:
        twin_counts = count_twin(twin, x)
        ann, ann32 = dense_energy(twin_counts, preset), dense_energy(twin_counts, "fp32")
        q = qann_energy(twin_counts, counts.levels, costs.weight_bits, costs)
    rate = sum(l.output.nnz for l in counts.neurons) / max(1, sum(l.output.numel for l in counts.neurons))
    if counts.neurons and rate < 0.005:
        notes.append("(Nearly silent, as untrained weights often are: these numbers say little about a "
                     "trained model.)")
    return EnergyReport(counts, horowitz45(counts, preset), lemaire(counts, costs), twin_counts, ann, ann32, q,
                        model_energy, preset, costs, dict(info or {}), notes)
