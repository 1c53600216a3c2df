"""`Task`: what one kind of problem brings to the one training loop.

The engine (`train/engine.py`) never branches on a task's name. It asks the run's task for

    loaders(dataset)             -> (train loader, {split: eval loader})   the first split is evaluated every epoch
    model_kwargs(dataset)        -> create_model keywords describing the data (classes, vocabulary, ...)
    model_family(dataset)        -> the model family that reads the data (for the hint after a mismatch)
    loss(model)                  -> loss(out, target) (`per_step`: the model returns per-step outputs)
    distill_loss(loss, model, teacher, ...) -> that loss plus a KL term to a teacher's logits (`distill.py`)
    units(target)                -> how many units (images, tokens) a batch holds, for throughput
    train_stats(out, target)     -> device sums for the epoch line (e.g. correct predictions)
    evaluate(model, loader, ...) -> metrics of one split (loss, the task's metric, n, firing rates)
    headline(summary)            -> the first line `spikeformers train` prints

and a loader yields `(x, target)` pairs that `model(x)` and `loss(out, target)` understand. The base
class holds the evaluation loop that every summable metric shares (`eval_sums` per batch, then
`eval_metrics` over the sums, all-reduced across ranks); a task whose metric is not a sum (COCO mAP)
overrides `evaluate`.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any, ClassVar, Dict, Optional, Tuple

import torch
from torch import Tensor, nn
from ..errors import ConfigError
from ..models.inference import InferenceGraph
from ..neurons.monitor import FiringRateMonitor
from .distill import DistillationLoss

__all__ = ["Task", "autocast"]


def autocast(device: torch.device, amp: Optional[torch.dtype]):
    """bf16 autocast on `device` when `amp` is set, else nothing."""
    return torch.autocast(device.type, dtype=amp) if amp is not None else nullcontext()


class Task:
    """Base class; subclasses set the class attributes and the data-specific methods."""
    #: registry name
    name: ClassVar[str] = ""
    #: key of `evaluate`'s headline metric (summary.json holds it as `test_<metric>`)
    metric: ClassVar[str] = "acc"
    #: is a larger metric better (accuracy, mAP) or a smaller one (bits per character)
    higher_is_better: ClassVar[bool] = True
    #: what throughput counts: "images" (one per sample) or "tokens"
    unit: ClassVar[str] = "images"
    #: the dataset kind this task trains on (`dataset.kind`)
    data_kind: ClassVar[str] = "array"
    #: does `spikeformers predict` serve this task's runs (raw inputs in, predictions out)
    predicts: ClassVar[bool] = False
    #: does `spikeformers export --format onnx` cover this task's runs
    exports_onnx: ClassVar[bool] = False
    #: how distillation compares the logits `distill_logits` picks: "softmax" (one distribution over the last
    #: axis) or "sigmoid" (independent classes, a binary KL each)
    distill_kind: ClassVar[str] = "softmax"

    def __init__(self, cfg: Any):
        self.cfg = cfg

    # --- data ------------------------------------------------------------------------------------
    def check_dataset(self, dataset: Any) -> None:
        kind = getattr(dataset, "kind", "array")
        if kind != self.data_kind:
            raise ValueError(f"task {self.name!r} cannot train on dataset {dataset.name!r} ({kind} data); "
                             f"its default task is {getattr(dataset, 'task', 'classify')!r}")

    def model_kwargs(self, dataset: Any) -> Dict[str, Any]:
        """create_model keywords that describe the data (input shape, classes, vocabulary)."""
        return dataset.model_kwargs()

    def model_family(self, dataset: Any) -> Optional[Tuple[str, str]]:
        """(registry family, its name in messages) of the models that read this task's data, or None when the
        image backbones do; a run whose model cannot read the data is told to use one of them."""
        return None

    def loaders(self, dataset: Any) -> Tuple[Any, Dict[str, Any]]:
        raise NotImplementedError

    # --- training --------------------------------------------------------------------------------
    def loss(self, model: nn.Module) -> nn.Module:
        """The training loss `loss(out, target)` (its `per_step`: the model returns per-step outputs).
        `model` tells a loss what it needs of the model's layout (a detector's strides)."""
        raise NotImplementedError

    def distill_logits(self, out: Any) -> Tensor:
        """The logits of a model output that distillation compares, classes on the last axis."""
        raise ConfigError(f"task {self.name!r} has no logits to distill from a teacher")

    def distill_loss(self, loss: nn.Module, model: nn.Module, teacher: nn.Module, weight: float = 1.0,
                     temperature: float = 2.0, features: float = 0.0) -> nn.Module:
        """`loss` plus the KL between `teacher`'s and the student's logits (`distill_logits`, at `temperature`,
        times its square and `weight`) and, with `features` > 0, the MSE of their block outputs
        (`tasks/distill.py`). The training step runs the teacher (`teach`) and hands its output to the loss."""
        if type(self).distill_logits is Task.distill_logits:  # its one-line error now, not at the first step
            self.distill_logits(None)
        return DistillationLoss(loss, model, teacher, self.distill_logits, self.distill_kind, weight, temperature,
                                features)

    def units(self, target: Any) -> int:
        return int(target.shape[0])

    def train_stats(self, out: Any, target: Tensor) -> Dict[str, Tensor]:
        """Sums over a batch, accumulated on the device over an epoch and divided by its units."""
        return {}

    # --- evaluation ------------------------------------------------------------------------------
    def eval_sums(self, out: Any, target: Any) -> Dict[str, Tensor]:
        """Per-batch sums (scalars, or tensors such as a confusion matrix); must include "n", the units scored."""
        raise NotImplementedError

    def eval_metrics(self, sums: Dict[str, Any]) -> Dict[str, Any]:
        """Metrics from the sums over a whole split (scalars as floats, tensors as float64 CPU tensors)."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader: Any, amp: Optional[torch.dtype], monitor: bool = False,
                 dist: Any = None) -> Dict[str, Any]:
        """Metrics of `model` over `loader` (and per-layer firing rates with `monitor=True`)."""

        model.eval()
        device = loader.device
        sums: Dict[str, Tensor] = {}
        mon = FiringRateMonitor(model) if monitor else None
        forward = self.inference(model)  # a CUDA graph per batch shape on CUDA (none while the monitor's hooks watch)
        with (mon if mon else nullcontext()), autocast(device, amp):
            for x, y in loader:
                for k, v in self.eval_sums(forward(x), y).items():
                    sums[k] = sums[k] + v if k in sums else v
        out = self.eval_metrics(_reduce_sums(sums, dist, device))
        if mon:
            out.update(reduce_rates(mon, dist, device))
        return out

    def inference(self, model: nn.Module) -> InferenceGraph:
        """`model`'s evaluation forward, replayed as CUDA graphs where they apply (kept for the task's life: the
        graphs read the weights in place, so they follow training)."""
        graphs = self.__dict__.setdefault("_inference", {})
        if graphs.get(id(model), (None,))[0] is not model:
            graphs[id(model)] = (model, InferenceGraph(model))
        return graphs[id(model)][1]

    def evaluate_splits(self, model: nn.Module, loaders: Dict[str, Any], amp: Optional[torch.dtype],
                        dist: Any = None) -> Dict[str, Any]:
        """Every split's metrics as `<split>_<key>` (its count as `<split>_<unit>`), plus the firing
        rates measured on the last split (the test split)."""
        out: Dict[str, Any] = {}
        splits = list(loaders)
        for split in splits:
            ev = self.evaluate(model, loaders[split], amp, monitor=split == splits[-1], dist=dist)
            out.update({f"{split}_{self.unit if k == 'n' else k}": v for k, v in ev.items()
                        if k not in ("firing_rates", "mean_firing_rate")})
        out.update(mean_firing_rate=ev["mean_firing_rate"], firing_rates=ev["firing_rates"])
        return out

    def format_metric(self, value: float) -> str:
        return f"{self.metric} {value:.4g}"

    def format_metrics(self, rec: Dict[str, Any], prefix: str) -> str:
        """`<prefix> loss 0.123 <metric>` from a record's `<prefix>_loss` and `<prefix>_<metric>`."""
        parts = [prefix]
        if f"{prefix}_loss" in rec:
            parts.append(f"loss {rec[f'{prefix}_loss']:.3f}")
        if rec.get(f"{prefix}_{self.metric}") is not None:
            parts.append(self.format_metric(rec[f"{prefix}_{self.metric}"]))
        return " ".join(parts)

    def headline(self, summary: Dict[str, Any]) -> str:
        """The first line of a finished run's report (ending in `run_facts`)."""
        raise NotImplementedError

    @staticmethod
    def run_facts(s: Dict[str, Any]) -> str:
        """The part every headline ends with: (model, parameters, epochs, time on device)."""
        return (f"({s['model']}, {s['parameters'] / 1e6:.3f} M parameters, {s['epochs']} epochs, "
                f"{s['train_time_s']:.0f} s on {s['device']})")

    def eval_line(self, res: Dict[str, Any]) -> str:
        """What `spikeformers eval` prints of `evaluate_splits`' result (before the firing rate)."""
        raise NotImplementedError


def _reduce_sums(sums: Dict[str, Tensor], dist: Any, device: torch.device) -> Dict[str, Any]:
    """The per-batch sums over the whole split, added over ranks with one all-reduce."""
    names = sorted(sums)
    if not names:
        return {}
    flat = torch.cat([sums[k].double().reshape(-1) for k in names])
    if dist is not None and dist.world_size > 1:
        flat = dist.sum(flat)
    out, i, flat = {}, 0, flat.cpu()
    for k in names:
        n = sums[k].numel()
        v = flat[i:i + n].view(sums[k].shape)
        out[k] = float(v) if sums[k].dim() == 0 else v
        i += n
    return out


def reduce_rates(mon: Any, dist: Any, device: torch.device) -> Dict[str, Any]:
    """The monitor's per-layer and mean firing rates, averaged over ranks (equal shards)."""
    rates, mean = mon.rates(), mon.mean_rate()
    if dist is not None and dist.world_size > 1:
        names = list(rates)
        r = dist.sum(torch.tensor([rates[k] for k in names] + [mean], device=device, dtype=torch.float64))
        r = r / dist.world_size
        rates, mean = dict(zip(names, r[:-1].tolist())), float(r[-1])
    return {"firing_rates": rates, "mean_firing_rate": mean}
