"""energy.png: energy per layer (the report's energy model) beside the firing rate of its input."""
from __future__ import annotations

from typing import Any

from ..plotting import pyplot, save_figure

__all__ = ["plot_energy"]


def plot_energy(report: Any, path: str) -> None:
    """Horizontal bars (an `EnergyReport`) in model order: energy (uJ per image) and input firing rate (%, spiking layers)."""
    plt = pyplot()
    rows = report.rows()
    names = [l.name for l in rows]
    energy = [report.snn.layer_total(n) * 1e-6 for n in names]
    rates = []
    for l in rows:  # an analog input has no firing rate
        r = (l.output.rate if l.output.known else None) if l.kind == "neuron" else l.rate
        analog = l.kind != "neuron" and l.event is None and "real" in l.domain
        rates.append(100 * r if r is not None and not analog else 0.0)
    colors = ["tab:orange" if l.mac and not l.ac else "tab:gray" if l.kind == "neuron" else "tab:blue" for l in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 0.22 * len(names) + 1.6), sharey=True)
    y = range(len(names))
    a1.barh(y, energy, color=colors)
    a1.set_yticks(y, names, fontsize=6)
    a1.invert_yaxis()
    a1.set_xlabel(f"energy per image (uJ, {report.model_energy}"
                  f"{', ' + report.preset if report.model_energy == 'horowitz45' else ''})")
    a1.grid(axis="x", alpha=0.3)
    a2.barh(y, rates, color=colors)
    a2.set_xlabel("firing rate (%): input of a layer, output of a neuron")
    a2.grid(axis="x", alpha=0.3)
    title = report.info.get("model") or report.counts.model_name or ""
    if report.info.get("data"):
        title += f" on {report.info['data']}"
    fig.suptitle(f"{title}  (blue: AC, orange: MAC, gray: neurons)", fontsize=9)
    save_figure(fig, path)
    plt.close(fig)
