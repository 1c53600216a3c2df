"""Experiment loggers beyond the run folder's own records (metrics.jsonl and metrics.csv, always written).

    run.loggers: [tensorboard]        # TensorBoard event files in <run>/tensorboard (needs `tensorboard`)
    run.loggers: [tensorboard, wandb] # Weights & Biases, offline, in <run>/wandb (needs `wandb`)

Each logger receives per-step scalars (loss, learning rate, throughput), per-epoch metrics and per-layer
firing rates (TensorBoard: histograms and one scalar per layer), and the config as hyper-parameters.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Sequence

__all__ = ["LOGGERS", "create_loggers", "Loggers"]

#: accepted names; jsonl and csv are the run folder's own records and always on
LOGGERS = ("jsonl", "csv", "tensorboard", "wandb")


class _TensorBoard:
    def __init__(self, run_dir: str, config: Dict[str, Any]):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ValueError("run.loggers tensorboard needs the tensorboard package: pip install tensorboard") from None
        self.w = SummaryWriter(os.path.join(run_dir, "tensorboard"))
        flat = {f"{s}.{k}": v if isinstance(v, (int, float, str, bool)) else str(v)
                for s, body in config.items() for k, v in body.items()}
        self.w.add_text("config", "\n".join(f"    {k}: {v}" for k, v in flat.items()), 0)
        self.hparams = flat

    def step(self, step: int, scalars: Dict[str, float]) -> None:
        for k, v in scalars.items():
            self.w.add_scalar(k, v, step)

    def epoch(self, epoch: int, record: Dict[str, Any], rates: Dict[str, float]) -> None:
        import torch

        for k, v in record.items():
            if isinstance(v, (int, float)) and k not in ("epoch",):
                self.w.add_scalar(f"epoch/{k}", v, epoch)
        if rates:
            self.w.add_histogram("firing_rates", torch.tensor(list(rates.values())), epoch)
            for name, r in rates.items():
                self.w.add_scalar(f"firing_rate/{name}", r, epoch)
        self.w.flush()

    def close(self, summary: Dict[str, Any]) -> None:
        metric = summary.get("metric")
        if metric and isinstance(summary.get(metric), (int, float)):
            self.w.add_hparams(self.hparams, {f"hparam/{metric}": summary[metric]}, run_name=".")
        self.w.close()


class _WandB:
    def __init__(self, run_dir: str, config: Dict[str, Any]):
        try:
            import wandb
        except ImportError:
            raise ValueError("run.loggers wandb needs the wandb package: pip install wandb") from None
        self.run = wandb.init(mode="offline", dir=run_dir, config=config, name=os.path.basename(run_dir), reinit=True)

    def step(self, step: int, scalars: Dict[str, float]) -> None:
        self.run.log(scalars, step=step)

    def epoch(self, epoch: int, record: Dict[str, Any], rates: Dict[str, float]) -> None:
        self.run.log({**{f"epoch/{k}": v for k, v in record.items() if isinstance(v, (int, float))},
                      **{f"firing_rate/{n}": r for n, r in rates.items()}})

    def close(self, summary: Dict[str, Any]) -> None:
        self.run.finish()


class Loggers:
    """The run's loggers as one: `step`, `epoch`, `close` fan out; `wants_rates` asks the engine to
    measure firing rates at every epoch's evaluation."""

    def __init__(self, loggers: List[Any]):
        self.loggers = loggers

    @property
    def wants_rates(self) -> bool:
        return bool(self.loggers)

    def step(self, step: int, scalars: Dict[str, float]) -> None:
        for lg in self.loggers:
            lg.step(step, scalars)

    def epoch(self, epoch: int, record: Dict[str, Any], rates: Dict[str, float]) -> None:
        for lg in self.loggers:
            lg.epoch(epoch, record, rates)

    def close(self, summary: Dict[str, Any]) -> None:
        for lg in self.loggers:
            lg.close(summary)
        self.loggers = []


def create_loggers(names: Sequence[str], run_dir: str, config: Dict[str, Any]) -> Loggers:
    """The loggers named in `run.loggers` (jsonl and csv need nothing: the engine writes them)."""
    bad = [n for n in names if n not in LOGGERS]
    if bad:
        raise ValueError(f"unknown logger(s) {', '.join(map(repr, bad))}; valid loggers: {', '.join(LOGGERS)}")
    kinds = {"tensorboard": _TensorBoard, "wandb": _WandB}
    return Loggers([kinds[n](run_dir, config) for n in names if n in kinds])
