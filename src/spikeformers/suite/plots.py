"""Suite plots: an accuracy-energy Pareto front, accuracy against throughput, and per-axis ablation bars
with error bars (sample standard deviation over every run with that axis value)."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Sequence

from ..plotting import METRIC_LABELS, pyplot, save_figure
from .stats import mean_std, pareto_front

__all__ = ["plot_suite"]

_COLORS = {"snn": "tab:blue", "ann": "tab:orange", "qann": "tab:green", "qann_sa": "tab:green", "converted": "tab:purple"}


def _label(r: Dict[str, Any]) -> str:
    parts = [str(r.get("attention") or r.get("model")), r.get("neuron") or "", r.get("twin") or ""]
    return " ".join(p for p in parts if p and p != "snn")


def _metric_label(rows: List[Dict[str, Any]]) -> str:
    m = rows[0]["metric"].split("_", 1)[-1]
    return f"test {METRIC_LABELS.get(m, m)}"


def _scatter(ax, rows, x_key: str, higher: bool, front: bool) -> None:
    pts = [(r[x_key], r["metric_mean"]) for r in rows if r.get(x_key) and r["metric_mean"] is not None]
    use = [r for r in rows if r.get(x_key) and r["metric_mean"] is not None]
    for r in use:
        ax.errorbar(r[x_key], r["metric_mean"], yerr=r["metric_std"] or 0, fmt="o", ms=5, capsize=2,
                    color=_COLORS.get(r.get("twin") or "snn", "tab:gray"))
        ax.annotate(_label(r), (r[x_key], r["metric_mean"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    if front and len(pts) > 1:
        idx = pareto_front(pts, higher)
        ax.plot([pts[i][0] for i in idx], [pts[i][1] for i in idx], "--", color="gray", lw=1, label="Pareto front")
        ax.legend(fontsize=7)


def plot_suite(folder: str, rows: List[Dict[str, Any]], axes: Sequence[str] = ()) -> Dict[str, str]:
    """pareto.png, throughput.png and (for suites with axes) ablation.png in `folder`."""
    plt = pyplot()
    higher = not rows[0]["metric"].endswith("bpc")
    ylabel, out = _metric_label(rows), {}

    fig, ax = plt.subplots(figsize=(7, 4.5))
    _scatter(ax, rows, "energy_memory_uJ", higher, front=True)
    ax.set_xscale("log")
    ax.set_xlabel("energy per sample, memory-aware model (uJ; blue SNN, orange ANN, green QANN)")
    ax.set_ylabel(ylabel), ax.grid(alpha=0.3), ax.set_title("accuracy-energy")
    out["pareto"] = os.path.join(folder, "pareto.png")
    save_figure(fig, out["pareto"])
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    _scatter(ax, rows, "throughput", higher, front=False)
    unit = next((r["throughput_unit"] for r in rows if r.get("throughput_unit")), "samples")
    ax.set_xlabel(f"training throughput ({unit}/s)"), ax.set_ylabel(ylabel), ax.grid(alpha=0.3)
    ax.set_title("accuracy-throughput")
    out["throughput"] = os.path.join(folder, "throughput.png")
    save_figure(fig, out["throughput"])
    plt.close(fig)

    axes = [a for a in axes if a not in ("run.seed", "seed")]
    if axes:
        fig, subplots = plt.subplots(1, len(axes), figsize=(4.2 * len(axes), 3.8), squeeze=False)
        for ax, axis in zip(subplots[0], axes):
            values: Dict[str, List[float]] = {}
            for r in rows:
                key = str(r["settings"].get(axis, r["settings"].get(f"model.{axis}")))
                values.setdefault(key, []).extend(v for v in r["values"] if v is not None)
            names = list(values)
            stats = [mean_std(values[n]) for n in names]
            ax.bar(range(len(names)), [m or 0 for m, _, _ in stats], yerr=[s or 0 for _, s, _ in stats], capsize=3,
                   color="tab:blue", alpha=0.8)
            ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
            lo = min((m - (s or 0) for m, s, _ in stats if m is not None), default=0)
            hi = max((m + (s or 0) for m, s, _ in stats if m is not None), default=1)
            pad = 0.1 * (hi - lo or 1)
            ax.set_ylim(lo - pad, hi + pad)
            ax.set_title(axis, fontsize=9), ax.set_ylabel(ylabel, fontsize=8), ax.grid(axis="y", alpha=0.3)
        out["ablation"] = os.path.join(folder, "ablation.png")
        save_figure(fig, out["ablation"])
        plt.close(fig)
    return out
