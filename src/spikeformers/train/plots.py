"""PNG plots of a run: training curves and per-layer firing rates (matplotlib, no display needed)."""
from __future__ import annotations

import os
from typing import Dict, List

__all__ = ["plot_curves", "plot_firing_rates"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> None:
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)  # atomic: a reader never sees half a PNG


def plot_curves(records: List[Dict], path: str, title: str = "") -> None:
    """Loss and accuracy per epoch from metrics.jsonl records."""
    plt = _pyplot()
    ep = [r["epoch"] for r in records]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    a1.plot(ep, [r["train_loss"] for r in records], label="train")
    a1.plot(ep, [r["test_loss"] for r in records], label="test")
    a1.set_xlabel("epoch"), a1.set_ylabel("loss"), a1.legend(), a1.grid(alpha=0.3)
    a2.plot(ep, [100 * r["train_acc"] for r in records], label="train")
    a2.plot(ep, [100 * r["test_acc"] for r in records], label="test")
    a2.set_xlabel("epoch"), a2.set_ylabel("accuracy (%)"), a2.legend(), a2.grid(alpha=0.3)
    fig.suptitle(title)
    _save(fig, path)
    plt.close(fig)


def plot_firing_rates(rates: Dict[str, float], path: str, title: str = "") -> None:
    """Horizontal bars, one per spiking layer, in model order."""
    plt = _pyplot()
    names = list(rates)
    fig, ax = plt.subplots(figsize=(8, 0.25 * len(names) + 1.2))
    ax.barh(range(len(names)), [100 * rates[n] for n in names])
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("firing rate (%)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)
    plt.close(fig)
