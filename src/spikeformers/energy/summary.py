"""Headline energy numbers of a run: one fixed sample, the first `ENERGY_SAMPLE` test samples, gives
the same numbers in summary.json, `spikeformers eval` and `spikeformers energy RUN_DIR` (firing rates
of the run itself are measured over the whole test split)."""
from __future__ import annotations

from typing import Any, Dict

from torch import nn
from .report import energy_report

__all__ = ["ENERGY_SAMPLE", "energy_headline", "energy_sample"]

#: test samples a run's energy is counted on (the first ones, in the test split's order)
ENERGY_SAMPLE = 64

#: headline keys kept in summary.json (the full report is `spikeformers energy RUN_DIR`)
_KEEP = ("T", "images", "preset", "snn_uJ", "snn_lemaire_uJ", "ann_twin_uJ", "qann_uJ", "qann_act_bits",
         "weight_bits", "ann_over_snn", "qann_over_snn", "ops_reduction", "mult_reduction", "snn_ac", "snn_mac",
         "ann_twin_mac", "mean_firing_rate", "text")


def energy_sample(loader: Any, n: int = ENERGY_SAMPLE) -> Any:
    """The first `n` samples of an evaluation loader's split, as the loader yields them (time-first too)."""
    x = next(iter(loader))[0]
    return x.narrow(loader.batch_dim, 0, min(n, x.shape[loader.batch_dim]))


def energy_headline(model: nn.Module, x: Any, cfg: Any = None, dataset: Any = None, task: Any = None) -> Dict[str, Any]:
    """Per-image energy of `model` on the batch `x` (45 nm fp32 and memory-aware) against its ANN and
    QANN twins, as a small dict with a one-paragraph `text` (printed by `spikeformers train`).

    A failure is reported in the dict (`error`), never raised: it must not cost a finished run its summary.
    """

    tokens = getattr(task, "unit", "images") == "tokens"  # x: token ids [B, N]; report per token too
    info = {"model": getattr(getattr(cfg, "model", None), "name", None) or getattr(model, "model_name", None),
            "data": getattr(dataset, "name", None), "unit": "sequence" if tokens else "image"}
    try:
        rep = energy_report(model, x, info=info)
        info["sample"] = f"first {rep.counts.batch_size} test {info['unit']}s"
        h = rep.headline()
    except Exception as e:  # noqa: BLE001 - reported, see docstring
        msg = f"{type(e).__name__}: {e}"
        return {"error": msg, "text": f"energy estimate failed ({msg}); try `spikeformers energy RUN_DIR`"}
    out = {k: h[k] for k in _KEEP if k in h}
    out["sample"] = info["sample"]
    text = h["text"]
    if tokens:
        n = x.shape[1]
        for k in ("snn_uJ", "snn_lemaire_uJ", "ann_twin_uJ", "qann_uJ"):
            if out.get(k) is not None:
                out[f"{k[:-3]}_nJ_per_token"] = 1e3 * out[k] / n
        text += (f" Per token ({n} per sequence): SNN {out['snn_nJ_per_token']:.4g} nJ"
                 + (f" vs ANN twin {out['ann_twin_nJ_per_token']:.4g} nJ" if "ann_twin_nJ_per_token" in out else "") + ".")
    out["text"] = f"{text} Details: spikeformers energy RUN_DIR."
    return out
