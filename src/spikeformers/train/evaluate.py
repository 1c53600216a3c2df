"""Evaluate a finished (or stopped) run directory: rebuild its model, load its checkpoint, test it."""
from __future__ import annotations

import os
from typing import Any, Dict

from ..energy.summary import energy_headline, energy_sample
from ..io import atomic_write_json, load_checkpoint, load_model_state
from .run import amp_dtype, build_dataset, build_model, build_task, load_run, resolve_device

__all__ = ["evaluate_run", "load_trained_model"]


def load_trained_model(run_dir: str, device: str = "auto"):
    """(model with its checkpoint weights — the EMA weights when the run kept them, config, dataset)."""
    cfg, _ = load_run(run_dir)
    dev = resolve_device(device)
    dataset = build_dataset(cfg).to(dev)
    model = build_model(cfg, dataset)
    ck = load_checkpoint(os.path.join(run_dir, "checkpoint"), map_location="cpu", train_state=False)
    load_model_state(model, ck.extra_tensors.get("ema", ck.model_state), ck.path)
    return model.to(dev).eval(), cfg, dataset


def evaluate_run(run_dir: str, device: str = "auto", progress: bool = True) -> Dict[str, Any]:
    """The run's task metrics on every evaluation split (firing rates on the last) and its energy on the
    fixed sample summary.json uses, written to eval.json."""
    model, cfg, dataset = load_trained_model(run_dir, device)
    dev = next(model.parameters()).device
    task = build_task(cfg, dataset)
    _, loaders = task.loaders(dataset)
    res: Dict[str, Any] = {"run_dir": run_dir, "task": task.name, "metric": f"{list(loaders)[-1]}_{task.metric}"}
    res.update(task.evaluate_splits(model, loaders, amp_dtype(cfg.run.amp, dev)))
    res["energy"] = energy_headline(model, energy_sample(list(loaders.values())[-1]), cfg, dataset, task=task)
    res["path"] = os.path.join(run_dir, "eval.json")
    try:  # a read-only run folder costs the file, not the result
        atomic_write_json(res["path"], res)
    except OSError as e:
        res["path"], res["write_error"] = None, f"could not write {os.path.join(run_dir, 'eval.json')}: {e.strerror or e}"
    return res
