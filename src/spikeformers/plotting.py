"""PNG plots (matplotlib without a display): the shared figure helpers and a run's training curves and
per-layer firing rates."""
from __future__ import annotations

import io
from typing import Dict, List

from .io import atomic_write_bytes

__all__ = ["METRIC_LABELS", "pyplot", "save_figure", "plot_curves", "plot_firing_rates"]


def pyplot():
    """matplotlib.pyplot on the Agg backend (imported on first use: start-up time)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str) -> None:
    """Write `fig` as a PNG atomically (a reader never sees half a file; a link at `path` is replaced, not
    followed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


METRIC_LABELS = {"acc": "accuracy", "bpc": "bits per character", "map50": "mAP@0.5", "miou": "mIoU"}


def plot_curves(records: List[Dict], path: str, title: str = "", metric: str = "acc", split: str = "test",
                percent: bool = True) -> None:
    """Loss and the task's metric per epoch from metrics.jsonl records (`train_<metric>` where the
    training loop measures it, and `<split>_<metric>`)."""
    plt = pyplot()
    ep = [r["epoch"] for r in records]
    scale = 100 if percent else 1
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    a1.plot(ep, [r["train_loss"] for r in records], label="train")
    if f"{split}_loss" in records[0]:
        a1.plot(ep, [r[f"{split}_loss"] for r in records], label=split)
    a1.set_xlabel("epoch"), a1.set_ylabel("loss"), a1.legend(), a1.grid(alpha=0.3)
    for prefix in ("train", split):
        if f"{prefix}_{metric}" in records[0]:
            a2.plot(ep, [scale * r[f"{prefix}_{metric}"] for r in records], label=prefix)
    label = METRIC_LABELS.get(metric, metric) + (" (%)" if percent else "")
    a2.set_xlabel("epoch"), a2.set_ylabel(label), a2.legend(), a2.grid(alpha=0.3)
    fig.suptitle(title)
    save_figure(fig, path)
    plt.close(fig)


def plot_firing_rates(rates: Dict[str, float], path: str, title: str = "") -> None:
    """Horizontal bars, one per spiking layer, in model order."""
    plt = pyplot()
    names = list(rates)
    fig, ax = plt.subplots(figsize=(8, 0.25 * len(names) + 1.2))
    ax.barh(range(len(names)), [100 * rates[n] for n in names])
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("firing rate (%)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    save_figure(fig, path)
    plt.close(fig)
