"""One training loop for every task: AdamW + warmup/cosine, label smoothing, bf16 on CUDA, gradient
clipping, optional EMA, evaluation every epoch, a progress bar, JSONL metrics, atomic checkpoints
and exact resume.

    summary = train(load_config(None, ["attention=a2os2a"]))

Run directory `runs/<name>/`: config.yaml, metrics.jsonl, metrics.csv, summary.json, curves.png,
firing_rates.png, checkpoint/. Same seed, device and config give the same numbers; `resume` after a
kill continues from the last finished epoch to the same result.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..energy.summary import energy_headline, energy_sample
from ..errors import ConfigError, TrainingDiverged
from ..models import count_parameters
from ..neurons.base import spikes_as_bits
from ..version import __version__
from .config import ALIASES, TrainConfig, config_to_dict, load_config, save_config
from .cuda_graph import GraphedStep
from .distill import distillation_loss
from .ema import EMA
from .recompute import enable_recompute
from .distributed import Distributed
from .step import forward_backward
from .lock import FolderLock
from .resume_check import refuse_edited_config
from .rundir import SUITE_ENV, create_run_dir, record_start, refuse_links
from .run import (amp_dtype, build_dataset, build_model, build_task, default_run_name, device_name, load_run,
                  peak_memory_gb, provenance, resolve_device, seed_everything, tf32_matmuls)
from .loggers import Loggers, create_loggers
from ..io import (append_jsonl, atomic_write_json, atomic_write_text, capture_rng_state, load_checkpoint, load_model_state,
                 read_jsonl, restore_rng_state, save_checkpoint, write_csv)
from ..plotting import plot_curves, plot_firing_rates
from .schedule import warmup_cosine

__all__ = ["Trainer", "train", "param_groups"]


def param_groups(model: nn.Module, weight_decay: float) -> List[Dict[str, Any]]:
    """No weight decay on BN/bias/scalar parameters (the usual transformer recipe)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _unique_dir(root: str, name: str) -> str:
    """A new run folder, created and marked here (`name`, else `name-2`, ...); a suite's cell gets its own."""
    return create_run_dir(root, name, suite=os.environ.get(SUITE_ENV) or None)


class _SavedInterrupt(KeyboardInterrupt):
    """Ctrl-C after the step in flight finished and the run was saved."""


class Trainer:
    """Builds everything a run needs from a config, then `fit()` trains it and returns the summary."""

    def __init__(self, cfg: TrainConfig, progress: bool = True, run_dir: Optional[str] = None):
        self.cfg, self.progress = cfg, progress
        self.dist = Distributed.from_env(cfg.run.device)
        self.device = self.dist.device if self.dist.world_size > 1 else resolve_device(cfg.run.device)
        self.amp = amp_dtype(cfg.run.amp, self.device)
        if cfg.run.threads:
            torch.set_num_threads(cfg.run.threads)
        seed_everything(cfg.run.seed)
        self.dataset = build_dataset(cfg).to(self.device)
        self.task = build_task(cfg, self.dataset)
        per_rank = -(-cfg.data.batch_size // self.dist.world_size)  # checked to fit before it is allocated
        self.model = build_model(cfg, self.dataset, self.task, self.device, per_rank).to(self.device)
        model_cfg = getattr(self.model, "cfg", None)
        if model_cfg is not None:  # command-line options arrive as text: save them typed
            cfg.model.options = {k: getattr(model_cfg, k, v) for k, v in cfg.model.options.items()}
        if cfg.run.memory == "recompute":
            if cfg.run.compile:
                raise ConfigError("run.memory=recompute excludes run.compile=true (torch.compile plans its own recomputation)")
            enable_recompute(self.model)
        if cfg.run.sync_bn:
            self.model = self.dist.convert_sync_bn(self.model)
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.n_params = count_parameters(self.model)
        self.ema = EMA(self.model, cfg.run.ema) if cfg.run.ema else None
        self.use_graph = self._graph_plan()
        if self.use_graph:  # several ranks: no DDP wrapper (its hooks cannot be captured); the loop does its work
            self.dist.broadcast_module(self.model)
            self.train_model = self.model
        else:
            self.train_model = self.dist.wrap(self.model)
        if cfg.run.compile:
            self.train_model = torch.compile(self.train_model)
        d, o = cfg.data, cfg.optim
        self.train_loader, self.eval_loaders = self.task.loaders(self.dataset)
        self.loss_fn = self.task.loss(self.model).to(self.device)  # its buffers (a detector's locations) too
        if cfg.distill.teacher:  # a finished run's model teaches: the loss runs it (frozen, outside self.model)
            self.loss_fn = distillation_loss(cfg, self.task, self.model, self.dataset, self.loss_fn, self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.buffers = list(self.model.buffers())
        self.graphed = None
        if self.use_graph:  # clipping waits for the averaged gradients when there are several ranks
            clip = cfg.optim.grad_clip if self.dist.world_size == 1 else None
            self.graphed = GraphedStep(self.model, self.loss_fn, self.amp, clip, self.loss_fn.per_step,
                                       fallback=cfg.run.cuda_graph == "auto")
        self.dist.shard(self.train_loader, *self.eval_loaders.values())
        if len(self.train_loader) == 0:
            raise ConfigError(f"data.batch_size={d.batch_size} is larger than the training set")
        self.optimizer = torch.optim.AdamW(param_groups(self.model, o.weight_decay), lr=o.lr, betas=tuple(o.betas),
                                           fused=self.device.type == "cuda")
        self.steps_per_epoch = len(self.train_loader)
        self.total_steps = cfg.schedule.epochs * self.steps_per_epoch
        self.warmup_steps = int(round(cfg.schedule.warmup_epochs * self.steps_per_epoch))
        self.epoch, self.step, self.elapsed = 0, 0, 0.0
        self.history: List[Dict[str, Any]] = []
        self.partial: Dict[str, Any] = {}  # progress inside the current epoch, kept by an interrupt's checkpoint
        self.lr_anchor: List[float] = []  # [step, lr]: where a resume that changed schedule.epochs re-anchored the cosine
        self._stop = False  # set by the first Ctrl-C: finish the step, save, stop
        # rank 0 creates the run directory (the others could race it into "name-2")
        self.run_dir = run_dir or self.dist.broadcast(
            _unique_dir(cfg.run.out_dir, cfg.run.name or default_run_name(cfg)) if self.dist.is_main else None)
        self._locked = False
        self.loggers = Loggers([])
        self.ckpt_dir = os.path.join(self.run_dir, "checkpoint")

    def _graph_plan(self) -> bool:
        """Whether the step replays as a CUDA graph: `run.cuda_graph` true (an error where it cannot), false, or
        auto (on where it can; a CUDA run that cannot says why in one line)."""
        cfg, why = self.cfg, None
        if self.device.type != "cuda":
            why = f"it needs a CUDA device; this run is on {self.device}"
        elif cfg.run.compile:
            why = "it excludes run.compile=true"
        elif self.dist.world_size > 1 and cfg.run.sync_bn:
            why = "several ranks cannot capture SyncBatchNorm's collectives (run.sync_bn=true)"
        if why and cfg.run.cuda_graph == "true":
            raise ConfigError(f"run.cuda_graph=true: {why}")
        if why and cfg.run.cuda_graph == "auto" and self.device.type == "cuda" and self.dist.is_main:
            print(f"note: training eagerly, without a CUDA graph: {why}", file=sys.stderr, flush=True)
        return why is None and cfg.run.cuda_graph != "false"

    # --- state -----------------------------------------------------------------------------------
    def _meta(self) -> Dict[str, Any]:
        return {"config": config_to_dict(self.cfg), "model_name": self.cfg.model.name,
                "model_args": getattr(self.model, "model_args", {}), "version": __version__}

    def save(self) -> None:
        if not self.dist.is_main:
            return
        extra = {"ema": _contiguous(self.ema.model.state_dict())} if self.ema else {}
        train_state = {"optimizer": self.optimizer.state_dict(), "epoch": self.epoch, "step": self.step,
                       "elapsed": self.elapsed, "rng": capture_rng_state(), "history_len": len(self.history),
                       "partial": self.partial, "lr_anchor": self.lr_anchor}
        save_checkpoint(self.ckpt_dir, model_state=_contiguous(self.model.state_dict()), extra_tensors=extra,
                        train_state=train_state, meta=self._meta())

    def restore(self) -> None:
        ck = load_checkpoint(self.ckpt_dir, map_location="cpu")
        load_model_state(self.model, ck.model_state, ck.path)
        if self.ema and "ema" in ck.extra_tensors:
            load_model_state(self.ema.model, ck.extra_tensors["ema"], ck.path)
        ts = ck.train_state
        self.optimizer.load_state_dict(ts["optimizer"])
        self.epoch, self.step, self.elapsed = int(ts["epoch"]), int(ts["step"]), float(ts["elapsed"])
        self.partial, self.lr_anchor = dict(ts.get("partial") or {}), list(ts.get("lr_anchor") or [])
        restore_rng_state(ts["rng"])
        saved_epochs = int(ck.meta["config"]["schedule"]["epochs"])
        if saved_epochs != self.cfg.schedule.epochs:
            self._reschedule(saved_epochs)
        metrics = os.path.join(self.run_dir, "metrics.jsonl")
        records = read_jsonl(metrics) if os.path.exists(metrics) else []  # none yet: stopped inside epoch 1
        self.history = records[: int(ts["history_len"])]
        if len(records) > len(self.history):  # killed between the metrics line and the checkpoint
            atomic_write_text(metrics, "".join(json.dumps(r) + "\n" for r in self.history))

    def _reschedule(self, saved_epochs: int) -> None:
        """schedule.epochs changed on resume: the cosine continues from the learning rate the run has now
        and reaches min_lr at the new end (past warmup; a change during warmup just moves the end)."""
        new = self.cfg.schedule.epochs
        done = self.epoch + (1 if self.partial else 0)
        if new < done:
            raise ConfigError(f"schedule.epochs={new} is fewer than the {done} epoch(s) this run has already "
                              f"(partly) trained; give at least {done}")
        if self.step >= self.warmup_steps:  # the learning rate now, under the schedule the run was trained with
            self.lr_anchor = [self.step, self._lr_at(self.step, saved_epochs * self.steps_per_epoch)]
        self._say(f"schedule.epochs {saved_epochs} -> {new}: the cosine now runs from step {self.step} "
                  f"to step {self.total_steps}")

    # --- loop ------------------------------------------------------------------------------------
    def _lr_at(self, step: int, total_steps: Optional[int] = None) -> float:
        s, base, total = self.cfg.schedule, self.cfg.optim.lr, total_steps or self.total_steps
        if self.lr_anchor and step >= self.lr_anchor[0]:  # the re-anchored tail after a schedule change
            start, lr0 = int(self.lr_anchor[0]), float(self.lr_anchor[1])
            progress = min(1.0, (step - start) / max(1, total - start))
            return s.min_lr + (lr0 - s.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
        return warmup_cosine(step, total_steps=total, warmup_steps=self.warmup_steps, base_lr=base, min_lr=s.min_lr)

    def _set_lr(self) -> float:
        lr = self._lr_at(self.step)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        return lr

    def train_epoch(self) -> Dict[str, float]:
        cfg, model = self.cfg, self.train_model
        model.train()
        self.train_loader.set_epoch(self.epoch)
        part, self.partial = self.partial, {}
        skip = int(part.get("batches", 0))  # batches an interrupted run already trained in this epoch
        loss_sum = torch.tensor(float(part.get("loss_sum", 0.0)), device=self.device)
        stats: Dict[str, Tensor] = {k: torch.tensor(v, device=self.device) for k, v in part.get("stats", {}).items()}
        bad = torch.zeros((), device=self.device, dtype=torch.bool)  # any non-finite loss, read at sync points
        seen, t0 = int(part.get("seen", 0)), time.time() - float(part.get("seconds", 0.0))
        bar = tqdm(self.train_loader, desc=f"epoch {self.epoch + 1}/{cfg.schedule.epochs}", leave=False,
                   disable=None if (self.progress and self.dist.is_main) else True,  # None: only on a terminal
                   dynamic_ncols=True)
        for i, (x, y) in enumerate(bar):
            if i < skip:  # drawn anyway: the loader's random order and augmentation advance exactly as before
                continue
            if self._stop:  # Ctrl-C: keep what this epoch did so far; a resume continues at batch i
                self.partial = {"batches": i, "loss_sum": float(loss_sum), "seen": seen,
                                "stats": {k: float(v) for k, v in stats.items()}, "seconds": time.time() - t0}
                return {}
            lr = self._set_lr()
            if self.graphed is not None:
                self.dist.broadcast_tensors(self.buffers)  # DDP's broadcast_buffers (no-op on one process)
                loss, logits = self.graphed(x, y)  # forward and backward (and clipping, one process) in one replay
                if self.dist.world_size > 1:  # DDP's gradient all-reduce, then the clipping the graph left out
                    self.dist.average_gradients(self.params)
                    if cfg.optim.grad_clip:
                        nn.utils.clip_grad_norm_(self.params, cfg.optim.grad_clip)
            else:
                self.optimizer.zero_grad(set_to_none=True)
                loss, logits = forward_backward(model, x, y, self.loss_fn, self.amp, cfg.optim.grad_clip,
                                                self.params, self.loss_fn.per_step)
            self.optimizer.step()
            if self.ema:
                self.ema.update(self.model, self.step)  # self.step: updates so far
            bad |= ~torch.isfinite(loss)
            units = self.task.units(y)
            loss_sum += loss * units
            for k, v in self.task.train_stats(logits, y).items():
                stats[k] = stats[k] + v if k in stats else v
            seen += units
            self.step += 1
            if (i + 1) % cfg.run.log_every == 0 or i + 1 == len(self.train_loader):
                self._check_finite(bad)
                rate = seen * self.dist.world_size / (time.time() - t0)
                bar.set_postfix({"loss": f"{float(loss_sum) / seen:.3f}", "lr": f"{lr:.1e}", f"{self.task.unit}/s": f"{rate:.0f}"})
                self.loggers.step(self.step, {"train/loss": float(loss_sum) / seen, "train/lr": lr,
                                              f"train/{self.task.unit}_per_s": rate})
            if cfg.run.max_steps and self.step >= cfg.run.max_steps:
                break
        self._check_finite(bad)
        n = int(self.dist.sum(torch.tensor(seen, device=self.device))) if self.dist.world_size > 1 else seen
        rec = {"train_loss": float(self.dist.sum(loss_sum)) / n}
        rec.update({f"train_{k}": float(self.dist.sum(v)) / n for k, v in stats.items()})
        rec[f"{self.task.unit}_per_s"] = n / (time.time() - t0)
        return rec

    def _on_sigint(self, signum, frame) -> None:
        if self._stop:  # the second Ctrl-C: stop at once, without a checkpoint
            raise KeyboardInterrupt
        self._stop = True
        self._say("Ctrl-C: stopping after this step and saving (Ctrl-C again to stop at once, unsaved)")

    def _check_finite(self, bad: Tensor) -> None:
        if self.dist.any(bad):  # every rank stops together (one rank alone would leave the others hanging)
            last = (f"the last good checkpoint is {self.ckpt_dir} (epoch {self.epoch})" if self.epoch
                    else "no checkpoint was written yet")
            raise TrainingDiverged(f"loss became NaN/inf in epoch {self.epoch + 1} (by step {self.step}); "
                                   f"training stopped and {last}. Try a lower optim.lr or run.amp=off.")

    def fit(self) -> Dict[str, Any]:
        """Train to the end (or to run.max_minutes), holding the run folder's lock (rank 0)."""
        with tf32_matmuls(self.cfg.run.tf32 if self.device.type == "cuda" else None), \
                spikes_as_bits(self.cfg.run.memory != "default"):
            if not self.dist.is_main or self._locked:
                return self._fit()
            with FolderLock(self.run_dir, "training"):
                self._locked = True
                try:
                    return self._fit()
                finally:
                    self._locked = False

    def _fit(self) -> Dict[str, Any]:
        cfg = self.cfg
        if self.dist.is_main:
            os.makedirs(self.run_dir, exist_ok=True)
            save_config(cfg, os.path.join(self.run_dir, "config.yaml"))
            record_start(self.run_dir, {"epoch": self.epoch, "step": self.step,
                                        "schedule_epochs": self.cfg.schedule.epochs, **provenance(),
                                        "device": device_name(self.device), "world_size": self.dist.world_size})
            try:
                self.loggers = create_loggers(cfg.run.loggers, self.run_dir, config_to_dict(cfg))
            except ValueError as e:
                raise ConfigError(f"run.loggers: {e}") from None
        self._say(f"run {self.run_dir}: {cfg.model.name} ({self.n_params / 1e6:.3f} M parameters) on "
                  f"{cfg.data.name}, {self.device.type}{'' if self.amp is None else ' bf16'}"
                  f"{'' if self.dist.world_size == 1 else f' x{self.dist.world_size} ranks'}")
        deadline = time.time() + 60 * cfg.run.max_minutes if cfg.run.max_minutes else None
        # One process in the main thread: the first Ctrl-C finishes the step and saves (several ranks stop
        # as torchrun stops them, at their last epoch's checkpoint).
        graceful = self.dist.world_size == 1 and threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, self._on_sigint) if graceful else None
        # SIGTERM (a scheduler's stop; a dying suite's, once per thread of it) is one Ctrl-C, its repeats nothing
        previous_term = signal.signal(signal.SIGTERM, lambda *a: None if self._stop else self._on_sigint(*a)) \
            if graceful else None
        try:
            return self._epochs(deadline)
        except _SavedInterrupt:
            raise
        except KeyboardInterrupt:  # the second Ctrl-C, or several ranks
            where = (f"continue from epoch {self.epoch} with: spikeformers train resume={self.run_dir}" if self.epoch
                     else "no epoch finished, so nothing was saved: start it again")
            self._say(f"interrupted in epoch {self.epoch + 1}; {where}")
            raise
        finally:
            if graceful:
                signal.signal(signal.SIGINT, previous)
                signal.signal(signal.SIGTERM, previous_term)

    def _epochs(self, deadline: Optional[float]) -> Dict[str, Any]:
        cfg = self.cfg
        while self.epoch < cfg.schedule.epochs:
            t0 = time.time()
            rec = self.train_epoch()
            if self.partial:  # stopped by Ctrl-C inside the epoch
                self.elapsed += time.time() - t0
                if self.dist.is_main:
                    self.save()
                self._say(f"interrupted in epoch {self.epoch + 1} after {self.partial['batches']} of "
                          f"{self.steps_per_epoch} batches; saved. Continue with: "
                          f"spikeformers train resume={self.run_dir}")
                raise _SavedInterrupt()
            split, loader = next(iter(self.eval_loaders.items()))  # the split watched every epoch
            ev = self.task.evaluate(self.ema.model if self.ema else self.model, loader, self.amp,
                                    monitor=self.loggers.wants_rates, dist=self.dist)
            rates = ev.pop("firing_rates", {})
            ev.pop("mean_firing_rate", None)
            self.epoch += 1
            self.elapsed += time.time() - t0
            rec = {"epoch": self.epoch, "step": self.step, **rec,
                   **{f"{split}_{k}": v for k, v in ev.items() if k != "n"},
                   "lr": self.optimizer.param_groups[0]["lr"], "epoch_time_s": time.time() - t0,
                   "elapsed_s": self.elapsed}
            self.history.append(rec)
            if self.dist.is_main:
                append_jsonl(os.path.join(self.run_dir, "metrics.jsonl"), rec)
                write_csv(os.path.join(self.run_dir, "metrics.csv"), self.history)
                self.save()
                self.loggers.epoch(self.epoch, rec, rates)
            unit = self.task.unit
            self._say(f"epoch {self.epoch:3d}/{cfg.schedule.epochs}  {self.task.format_metrics(rec, 'train')}  |  "
                      f"{self.task.format_metrics(rec, split)}  |  {rec[f'{unit}_per_s']:.0f} {unit}/s, "
                      f"{rec['epoch_time_s']:.1f} s")
            if cfg.run.max_steps and self.step >= cfg.run.max_steps:
                break
            if deadline and time.time() > deadline and self.epoch < cfg.schedule.epochs:
                self._say(f"stopping after epoch {self.epoch}: run.max_minutes={cfg.run.max_minutes} reached; "
                          f"continue with: spikeformers train resume={self.run_dir}")
                return {"run_dir": self.run_dir, "finished": False, "epoch": self.epoch}
        return self.finish()

    def finish(self) -> Dict[str, Any]:
        """Evaluate every split (firing rates on the last, the test split), write summary.json and plots."""
        model = self.ema.model if self.ema else self.model
        task, splits = self.task, list(self.eval_loaders)
        summary: Dict[str, Any] = {
            "run_dir": self.run_dir, "finished": True, "task": task.name, "metric": f"{splits[-1]}_{task.metric}",
            "model": self.cfg.model.name, "model_args": getattr(self.model, "model_args", {}),
            "dataset": self.cfg.data.name, "parameters": self.n_params, "epochs": self.epoch, "steps": self.step,
        }
        summary.update(task.evaluate_splits(model, self.eval_loaders, self.amp, self.dist))
        cfg = getattr(self.model, "cfg", None)
        summary.update({
            "model_config": dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else {},
            "peak_memory_gb": peak_memory_gb(self.device), "train_time_s": self.elapsed, "device": device_name(self.device), "world_size": self.dist.world_size,
            "amp": str(self.amp).replace("torch.", "") if self.amp else "off", "seed": self.cfg.run.seed,
            "cuda_graph": self.graphed is not None and not self.graphed.eager,
            **provenance(),
        })
        if self.dist.is_main:
            summary.update(self._energy(model))
            atomic_write_json(os.path.join(self.run_dir, "summary.json"), summary)
            title = f"{self.cfg.model.name} on {self.cfg.data.name}"
            if self.history:
                plot_curves(self.history, os.path.join(self.run_dir, "curves.png"), title, metric=task.metric,
                            split=splits[0], percent=task.metric == "acc")
            if summary["firing_rates"]:
                plot_firing_rates(summary["firing_rates"], os.path.join(self.run_dir, "firing_rates.png"), title)
            self.loggers.close(summary)
        self.dist.close()
        return summary

    def _energy(self, model: nn.Module) -> Dict[str, Any]:
        """Headline energy numbers (filled in by the energy package when it is present)."""
        x = energy_sample(list(self.eval_loaders.values())[-1])
        return {"energy": energy_headline(model, x, self.cfg, self.dataset, task=self.task)}

    def _say(self, msg: str) -> None:
        if self.progress and self.dist.is_main:
            tqdm.write(msg)


def _contiguous(state: Dict[str, Tensor]) -> Dict[str, Tensor]:
    return {k: v.detach().contiguous() for k, v in state.items()}


def train(cfg: TrainConfig, progress: bool = True, resume: Optional[str] = None,
          overrides: Tuple[str, ...] = ()) -> Dict[str, Any]:
    """Train from a config, or continue the run directory `resume` (then only run.* keys and
    schedule.epochs may change)."""
    if resume is not None:
        if not str(resume).strip():
            raise ConfigError("resume= needs a run directory, e.g. resume=runs/NAME")
        refuse_links(resume)  # a run folder from elsewhere may point a file we write at any other
        saved, _ = load_run(resume)
        refuse_edited_config(resume, saved)
        keys = [ALIASES.get(k, k) for k in (o.split("=", 1)[0].strip() for o in overrides)]
        changed = [k for k in keys if not k.startswith("run.") and k != "schedule.epochs"]
        if changed:
            raise ConfigError(f"cannot change {', '.join(changed)} when resuming; only run.* keys and "
                              f"schedule.epochs may change")
        fixed = [k for k in keys if k in ("run.seed", "run.name", "run.out_dir")]
        if fixed:
            raise ConfigError(f"cannot change {', '.join(fixed)} when resuming: the run continues from its own stored "
                              f"random state and folder; start a new run for another seed")
        cfg = load_config(None, overrides, base=saved)
        with FolderLock(resume, "training"):
            trainer = Trainer(cfg, progress, run_dir=resume)
            trainer._locked = True
            trainer.restore()
            trainer._say(f"resuming {resume} after epoch {trainer.epoch}")
            return trainer.fit()
    return Trainer(cfg, progress).fit()
