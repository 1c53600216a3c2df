"""What a run is made of and where it came from: its device, precision, dataset, task and model built from a
config, its name, provenance (versions, commit) and `load_run` (a run folder's config and summary). The
engine (`engine.py`) and every command that reads a run folder (evaluate, predict, export, energy) share these.
"""
from __future__ import annotations

import json
import os
import platform
import random
import resource
import subprocess
from contextlib import contextmanager
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
import yaml
from torch import nn

from ..data import create_dataset
from ..errors import CheckpointError, ConfigError
from ..models import create_model, footprint, list_models, model_info
from .._registry import accepted_kwargs
from ..tasks import TASKS, create_task
from ..version import __version__
from .config import TrainConfig, config_from_dict, task_options

__all__ = ["resolve_device", "amp_dtype", "model_overrides", "build_dataset", "build_task", "build_model",
           "seed_everything", "tf32_matmuls", "default_run_name", "peak_memory_gb", "device_name", "provenance", "load_run"]


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as e:
        raise ConfigError(f"run.device: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"run.device={spec!r} but CUDA is not available on this machine")
    return device


def amp_dtype(spec: str, device: torch.device) -> Optional[torch.dtype]:
    if spec not in ("auto", "bf16", "off"):
        raise ConfigError(f"run.amp must be one of auto, bf16, off; got {spec!r}")
    if spec == "off" or (spec == "auto" and device.type != "cuda"):
        return None
    return torch.bfloat16


def model_overrides(cfg: TrainConfig, dataset, task=None) -> Dict[str, Any]:
    """The create_model keywords of a run: the data's input and classes (as the task reads them), then the
    config's choices."""
    m = cfg.model
    kw: Dict[str, Any] = (task or build_task(cfg, dataset)).model_kwargs(dataset)
    kw.update({k: getattr(m, k) for k in ("attention", "neuron", "T", "encoder", "twin") if getattr(m, k) is not None})
    kw.update(m.options)
    return kw


def build_dataset(cfg: TrainConfig):
    """The run's dataset (on the CPU), with its options from `data.options`."""
    return create_dataset(cfg.data.name, root=cfg.data.root, **cfg.data.options)


def build_task(cfg: TrainConfig, dataset):
    """The run's task: `task.name`, or the dataset's own (classification for image, event and sequence
    data; language modelling for text), with `task.options`; it must be able to train on `dataset`."""
    name = cfg.task.name or getattr(dataset, "task", "classify")
    options = task_options(cfg, accepted_kwargs(TASKS.get(name))) if name in TASKS else cfg.task.options
    task = create_task(name, cfg, **options)
    try:
        task.check_dataset(dataset)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return task


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), NumPy's and Python's global generators."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def build_model(cfg: TrainConfig, dataset, task=None, device: Optional[torch.device] = None,
                batch: Optional[int] = None) -> nn.Module:
    """The run's model for `dataset` (on the CPU); a model that cannot read the data is a one-line error naming
    models that can (the task knows which family reads its data).

    Before anything is allocated, the model is built on the meta device: its options are checked there, and
    its weights must fit in the host's memory. With `device` and `batch` (a training run), one training step
    (weights, gradients, AdamW moments, activations of `batch` samples) must fit on `device` too; what does
    not is a one-line error naming the setting to lower."""
    task = task or build_task(cfg, dataset)
    kw = model_overrides(cfg, dataset, task)
    try:  # the layout alone: no memory
        est = {"model": footprint.meta_model(cfg.model.name, kw)} if batch is None else footprint.training_bytes(
            cfg.model.name, kw, batch, amp=amp_dtype(cfg.run.amp, device) is not None,
            activations=cfg.run.memory != "recompute")
    except ValueError as e:
        raise ConfigError(f"model: {e}{_model_hint(cfg, dataset, task)}") from None
    _check_memory(cfg, footprint.weight_bytes(est["model"]), torch.device("cpu"), "to hold its weights", est)
    if batch is not None:
        _check_memory(cfg, est["total"], device, f"to train on batches of {batch}", est)
    try:
        return create_model(cfg.model.name, **kw)
    except ValueError as e:
        raise ConfigError(f"model: {e}{_model_hint(cfg, dataset, task)}") from None


def _check_memory(cfg: TrainConfig, need: int, device: torch.device, purpose: str, est: Dict[str, Any]) -> None:
    """A one-line ConfigError when `need` bytes exceed the memory available on `device`, naming what to lower:
    the batch and time steps when activations dominate, else the model's size options."""
    free = footprint.fits(need, device)
    if free is None:
        return
    T, at = getattr(getattr(est["model"], "cfg", None), "T", None), ""
    if (est.get("activations") or 0) > est.get("params", 0):
        parts = (f"{footprint.gigabytes(est['params'])} of weights, gradients and AdamW moments, "
                 f"{footprint.gigabytes(est['activations'])} of activations")
        advice = "lower data.batch_size or model.T, or set run.memory=recompute"
        at = f" at T={T}" if T is not None else ""
    else:
        parts = f"{sum(p.numel() for p in est['model'].parameters()) / 1e6:,.0f} M parameters"
        sizes = [k for k in ("dim", "depth", "depths", "mlp_ratio", "block_size", "vocab_size")
                 if k in cfg.model.options] or ["dim", "depth"]
        advice = f"lower {' or '.join(f'model.options.{k}' for k in sizes)}, or pick a smaller model"
    raise ConfigError(f"model {cfg.model.name}{at} needs about "
                      f"{footprint.gigabytes(need)} {purpose} ({parts}), more than the {footprint.gigabytes(free)} "
                      f"of memory available on {device}: {advice}")


def _model_hint(cfg: TrainConfig, dataset, task) -> str:
    """'; dataset X holds sequences, which M does not read: use a sequence model (...)' after a mismatch."""
    wanted = task.model_family(dataset)
    if wanted is None or model_info(cfg.model.name).get("family") == wanted[0]:
        return ""
    family, words = wanted
    names = [n for n in list_models() if model_info(n).get("family") == family]
    kind = getattr(dataset, "kind", "array")
    data = dataset.layout if kind == "array" else kind
    return (f"; dataset {cfg.data.name!r} holds {data}, which {cfg.model.name} does not read: use a {words} model, "
            f"e.g. {', '.join(names[:4])}")


def default_run_name(cfg: TrainConfig) -> str:
    parts = [cfg.data.name, cfg.model.name]
    if cfg.model.attention:
        parts.append(cfg.model.attention)
    if cfg.model.twin:
        parts.append(cfg.model.twin)
    return "_".join(parts + [f"s{cfg.run.seed}"])


def peak_memory_gb(device: torch.device) -> float:
    """Peak memory of this run: allocated GPU memory on CUDA, else the process's peak resident set (CPU)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def provenance() -> Dict[str, Any]:
    """Package version, torch version and git commit, stored with every run. A copy of the source without its
    git history (a machine the tree was copied to) names its commit in SPIKEFORMERS_COMMIT."""
    commit, dirty = os.environ.get("SPIKEFORMERS_COMMIT") or None, None
    if commit is None:
        commit, dirty = _git_commit()
    return {"version": __version__, "torch": torch.__version__, "cuda": torch.version.cuda, "git_commit": commit,
            "git_dirty": dirty}


def _git_commit() -> Tuple[Optional[str], Optional[bool]]:
    """(HEAD of the checkout this file is in, whether tracked files differ from it), or Nones outside git."""
    commit, dirty = None, None
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5).stdout.strip() or None
        if commit:  # uncommitted changes to tracked files make the commit an incomplete description
            status = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=5)
            dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return commit, dirty


def load_run(run_dir: str) -> Tuple[TrainConfig, Dict[str, Any]]:
    """The config of a run directory (and its summary, if finished)."""
    cfg_path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(cfg_path):
        raise CheckpointError(f"{run_dir} is not a run directory (no config.yaml)")
    try:
        with open(cfg_path, encoding="utf-8") as f:
            d = yaml.safe_load(f) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{cfg_path} is not a readable YAML config ({' '.join(str(e).split())[:200]})") from None
    try:
        cfg = config_from_dict(d)
    except ConfigError as e:
        raise ConfigError(f"{cfg_path}: {e}") from None
    summary_path = os.path.join(run_dir, "summary.json")
    summary = {}
    if os.path.exists(summary_path):
        try:
            with open(summary_path, encoding="utf-8") as f:
                summary = json.load(f)
        except (ValueError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{summary_path} is corrupt ({e}); delete it to evaluate the run again") from None
    return cfg, summary


@contextmanager
def tf32_matmuls(allow: Optional[bool]):
    """Within: CUDA fp32 matmuls (run.amp=off), our attention kernels' included, use TF32 or not as `allow`
    says (run.tf32 on a CUDA run; None: unchanged); the process's setting is restored afterwards."""
    was = torch.backends.cuda.matmul.allow_tf32
    if allow is not None:
        torch.backends.cuda.matmul.allow_tf32 = allow
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = was
