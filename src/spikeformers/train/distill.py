"""`distill.teacher=RUN`: a finished run's model teaches the one being trained (`tasks/distill.py` holds the
loss; Hinton, Vinyals and Dean, arXiv 1503.02531, 2015).

    spikeformers train configs/spiking_lm_tiny_gcide.yaml twin=ann run.name=teacher
    spikeformers train configs/spiking_lm_tiny_gcide.yaml neuron=if T=4 distill.teacher=runs/teacher

The teacher is rebuilt from its checkpoint's model name and options (`meta.json`) and its safetensors
weights (its EMA weights when the run kept them): nothing is unpickled, and its dataset is not loaded.
It must be a finished run of the same task whose model reads the same input and predicts the same
classes or vocabulary as the student; it sits on the student's device, frozen, in eval mode.
"""
from __future__ import annotations

import os
from typing import Any, Dict

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..io import load_checkpoint, load_model_state
from ..models import create_model
from .config import TrainConfig
from .run import load_run

__all__ = ["load_teacher", "distillation_loss"]

#: create_model keywords the data sets: what the teacher must predict, and what it must read
_OUTPUTS = {"num_classes": "classes", "vocab_size": "vocabulary"}
_INPUTS = ("img_size", "in_chans", "seq_len", "in_features")


def load_teacher(path: str, task: Any, data_kwargs: Dict[str, Any], device: torch.device) -> nn.Module:
    """The model of the finished run folder `path`, on `device` (the loss freezes it); one-line errors for
    anything that is not a finished run of `task` matching the data's classes and input (`data_kwargs`: the
    task's `model_kwargs` for the student's dataset)."""
    where = f"distill.teacher={path}"
    if not os.path.isdir(path):
        raise ConfigError(f"{where}: no such folder")
    try:
        _, summary = load_run(path)
    except (CheckpointError, ConfigError) as e:
        raise ConfigError(f"{where}: {e}") from None
    if summary.get("finished") is not True:
        raise ConfigError(f"{where} is not a finished run (no summary.json marking it finished): train it to the "
                          f"end, or resume it, before it teaches")
    if summary.get("task") != task.name:
        raise ConfigError(f"{where} is a {summary.get('task')!r} run; this run's task is {task.name!r}")
    try:
        ck = load_checkpoint(os.path.join(path, "checkpoint"), map_location="cpu", train_state=False)
    except CheckpointError as e:
        raise ConfigError(f"{where}: {e}") from None
    name, args = ck.meta.get("model_name"), ck.meta.get("model_args")
    if not isinstance(name, str) or not isinstance(args, dict):
        raise ConfigError(f"{where}: its checkpoint's meta.json names no model (model_name, model_args)")
    for key, what in _OUTPUTS.items():
        if key in data_kwargs and args.get(key) != data_kwargs[key]:
            raise ConfigError(f"{where}: teacher {what} {args.get(key)} vs student {data_kwargs[key]}; the teacher "
                              f"must predict the student's {what}")
    for key in _INPUTS:
        if key in data_kwargs and key in args and args[key] != data_kwargs[key]:
            raise ConfigError(f"{where}: the teacher reads {key}={args[key]}, the student's data {data_kwargs[key]}")
    if "block_size" in data_kwargs and int(args.get("block_size", 0)) < data_kwargs["block_size"]:
        raise ConfigError(f"{where}: the teacher reads at most {args.get('block_size')} tokens, the student's "
                          f"windows hold {data_kwargs['block_size']}")
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # the student's draws stay its own
        try:
            teacher = create_model(name, **args)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{where}: cannot rebuild its model {name} ({e})") from None
    load_model_state(teacher, ck.extra_tensors.get("ema", ck.model_state), ck.path)
    teacher = teacher.to(device)
    if device.type == "cuda":
        teacher = teacher.to(memory_format=torch.channels_last)
    return teacher  # DistillationLoss freezes it and keeps it in eval mode


def distillation_loss(cfg: TrainConfig, task: Any, model: nn.Module, dataset: Any, loss: nn.Module,
                      device: torch.device) -> nn.Module:
    """The task's `loss` with `cfg.distill`'s teacher terms (`Task.distill_loss`), on `device`."""
    d = cfg.distill
    teacher = load_teacher(d.teacher, task, task.model_kwargs(dataset), device)
    return task.distill_loss(loss, model, teacher, d.weight, d.temperature, d.features).to(device)
