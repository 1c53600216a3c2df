"""Typed, strict training configuration: YAML recipes plus `key=value` overrides.

A recipe lists only what it changes, nested by section:

    model: {name: spikformer_tiny, T: 4}
    optim: {lr: 1.0e-3}

Overrides use dotted keys (`optim.lr=1e-3`) or a short alias (`lr=1e-3`, see `ALIASES`); the
right-hand side is parsed as YAML and checked against the field's type. Model keys that are not
`ModelSection` fields (`model.depth=2`, or `depth: 2` under `model:`) go to `model.options`, which
`create_model` validates. Dataset options are explicit: `data.options.mode=row` or `options: {mode: row}`
under `data:`, checked by `create_dataset`. Every other unknown key or wrong type raises `ConfigError`
naming it.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import math
import os
import re
import sys
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from ..errors import ConfigError
from ..io import atomic_write_text

__all__ = [
    "TaskSection",
    "ModelSection",
    "DataSection",
    "OptimSection",
    "ScheduleSection",
    "RunSection",
    "DistillSection",
    "TrainConfig",
    "ALIASES",
    "load_config",
    "apply_override",
    "apply_mapping",
    "set_key",
    "config_to_dict",
    "config_from_dict",
    "save_config",
    "config_keys",
    "config_help",
    "task_options",
    "MOVED_TO_TASK",
]


@dataclass
class TaskSection:
    name: Optional[str] = None  # "classify", "lm", ... (None: the dataset's own task)
    options: Dict[str, Any] = field(default_factory=dict)  # the task's options, checked by create_task


@dataclass
class ModelSection:
    name: str = "spikformer_tiny"  # registered model name (`spikeformers models` lists them)
    attention: Optional[str] = None  # attention family override (None: the model's own)
    neuron: Optional[str] = None  # neuron override, e.g. "lif", "plif"
    T: Optional[int] = None  # time steps override
    encoder: Optional[str] = None  # input encoding override, e.g. "direct", "rate"
    twin: Optional[str] = None  # None: the spiking model; "ann": its ANN twin; "qann": its quantized ANN twin;
    # "qann_sa": the quantized twin that keeps the spiking attention (it converts exactly to an SNN)
    options: Dict[str, Any] = field(default_factory=dict)  # other model keywords, checked by create_model


@dataclass
class DataSection:
    name: str = "digits"  # registered dataset name
    root: Optional[str] = None  # folder with the dataset's files (None: its default places)
    batch_size: int = 64  # training batch size (global, over all devices)
    eval_batch_size: int = 256  # evaluation batch size
    crop_padding: Optional[int] = None  # random-crop padding = largest random shift, in pixels (event frames too)
    #                                      or steps (sequences) (None: the dataset's default)
    flip: Optional[bool] = None  # random horizontal flip (None: the dataset's default)
    erasing: float = 0.0  # random-erasing probability per sample
    options: Dict[str, Any] = field(default_factory=dict)  # dataset builder options, checked by create_dataset


@dataclass
class OptimSection:
    lr: float = 2e-3  # peak AdamW learning rate
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    betas: Tuple[float, float] = (0.9, 0.999)  # AdamW betas
    grad_clip: Optional[float] = 1.0  # max global gradient norm (None: no clipping)


#: loss options that were `optim.*` keys and are now the task's (`task.options.*`, e.g. tasks/classify.py), with
#: the defaults they had: a recipe or saved run that sets one gets it moved, with a one-line note when it
#: differs from that default (the task's own default is the same)
MOVED_TO_TASK = {"label_smoothing": 0.1, "mixup": 0.0, "cutmix": 0.0, "mix_prob": 1.0, "mix_switch_prob": 0.5,
                 "mix_off_epoch": None, "tet": False, "tet_lambda": 0.001, "tet_means": 1.0}
_NOTED: set = set()


@dataclass
class ScheduleSection:
    epochs: int = 20  # training epochs
    warmup_epochs: float = 2.0  # linear warmup length, in epochs (may be fractional)
    min_lr: float = 1e-5  # final learning rate of the cosine decay


@dataclass
class RunSection:
    name: Optional[str] = None  # run folder name under out_dir (None: derived from model and data)
    out_dir: str = "runs"  # parent folder of run folders
    seed: int = 0  # seed of weights, data order and augmentation
    device: str = "auto"  # "auto" (cuda when available), "cpu", "cuda", "cuda:1", ...
    amp: str = "auto"  # "auto" (bf16 on CUDA, off on CPU), "bf16" or "off"
    log_every: int = 20  # steps between progress/metric updates
    ema: Optional[float] = None  # EMA decay of the weights and BN statistics, e.g. 0.9995, warmed up (None: no EMA)
    compile: bool = False  # torch.compile the model
    cuda_graph: str = "auto"  # replay forward+backward as one CUDA graph: "auto" (on CUDA where it can: not with
    # compile, nor sync_bn on several ranks; eager if the capture fails), "true" (required) or "false"
    tf32: bool = True  # CUDA: fp32 matmuls may use TF32, as cuDNN's convolutions do by default (false: IEEE fp32)
    memory: str = "default"  # "packed": binary spikes saved for backward as bits; "recompute": that, and blocks and
    # patch-embedding stages rerun in backward (less memory each, same gradients)
    sync_bn: bool = False  # data parallel: BatchNorm statistics over the global batch, not each rank's share
    max_steps: Optional[int] = None  # stop after this many steps (for tests and smoke runs)
    threads: Optional[int] = None  # CPU intra-op threads (None: torch's default); 1 avoids OpenMP stalls on busy machines
    max_minutes: Optional[float] = None  # stop (resumably) after the first epoch that ends past this
    loggers: Tuple[str, ...] = ("jsonl", "csv")  # also "tensorboard", "wandb" (offline); jsonl and csv always


@dataclass
class DistillSection:
    teacher: Optional[str] = None  # a finished run folder (e.g. the ANN twin's, twin=ann) whose model teaches this
    # one: its logits (and block outputs, with features) join the loss; frozen, in eval mode (None: no teacher)
    weight: float = 1.0  # weight of the KL term between the teacher's and the student's logits (0: none)
    temperature: float = 2.0  # softmax temperature tau of both sides; the KL is scaled by tau^2 (Hinton et al. 2015)
    features: float = 0.0  # weight of the MSE between the student's block outputs (mean over time) and the
    # teacher's (0: off; both models need blocks of equal outputs)


@dataclass
class TrainConfig:
    """The whole training recipe; saved as `config.yaml` in every run folder."""

    model: ModelSection = field(default_factory=ModelSection)  # what to build
    data: DataSection = field(default_factory=DataSection)  # what to train on, and how to augment
    task: TaskSection = field(default_factory=TaskSection)  # what problem: loss, metric, evaluation
    optim: OptimSection = field(default_factory=OptimSection)  # AdamW
    schedule: ScheduleSection = field(default_factory=ScheduleSection)  # epochs, warmup, cosine decay
    run: RunSection = field(default_factory=RunSection)  # where, on what, how to log and resume
    distill: DistillSection = field(default_factory=DistillSection)  # a teacher run's logits in the loss


SECTIONS = tuple(f.name for f in dataclasses.fields(TrainConfig))

ALIASES = {
    "model": "model.name",
    "data": "data.name",
    "attention": "model.attention",
    "neuron": "model.neuron",
    "T": "model.T",
    "encoder": "model.encoder",
    "twin": "model.twin",
    "epochs": "schedule.epochs",
    "lr": "optim.lr",
    "seed": "run.seed",
    "batch_size": "data.batch_size",
    "name": "run.name",
    "device": "run.device",
    "task": "task.name",
}

# Value checks beyond the type, applied to non-null values: (predicate, what it requires).
_CHECKS = {
    ("model", "twin"): (lambda v: v in ("ann", "qann", "qann_sa"), "'ann', 'qann', 'qann_sa' or null"),
    ("model", "T"): (lambda v: v >= 1, ">= 1"),
    ("data", "batch_size"): (lambda v: v >= 1, ">= 1"),
    ("data", "eval_batch_size"): (lambda v: v >= 1, ">= 1"),
    ("data", "crop_padding"): (lambda v: v >= 0, ">= 0"),
    ("data", "erasing"): (lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("optim", "lr"): (lambda v: v > 0, "> 0"),
    ("optim", "weight_decay"): (lambda v: v >= 0, ">= 0"),
    ("optim", "betas"): (lambda v: all(0 <= b < 1 for b in v), "two numbers in [0, 1)"),
    ("optim", "grad_clip"): (lambda v: v > 0, "> 0 or null"),
    ("schedule", "epochs"): (lambda v: v >= 1, ">= 1"),
    ("schedule", "warmup_epochs"): (lambda v: v >= 0, ">= 0"),
    ("schedule", "min_lr"): (lambda v: v >= 0, ">= 0"),
    ("run", "amp"): (lambda v: v in ("auto", "bf16", "off"), "one of 'auto', 'bf16', 'off'"),
    ("run", "cuda_graph"): (lambda v: v in ("auto", "true", "false"), "one of auto, true, false"),
    ("run", "memory"): (lambda v: v in ("default", "packed", "recompute"), "one of default, packed, recompute"),
    ("run", "name"): (lambda v: v not in ("", ".", "..") and "/" not in v and "\\" not in v,
                      "a plain folder name (no '/', not '..'): runs live in run.out_dir"),
    ("run", "log_every"): (lambda v: v >= 1, ">= 1"),
    ("run", "ema"): (lambda v: 0 <= v < 1, "in [0, 1) or null"),
    ("run", "max_steps"): (lambda v: v >= 1, ">= 1 or null"),
    ("run", "max_minutes"): (lambda v: v > 0, "> 0 or null"),
    ("run", "threads"): (lambda v: v >= 1, ">= 1 or null"),
    ("distill", "teacher"): (lambda v: v.strip() != "", "a run folder or null"),
    ("distill", "weight"): (lambda v: v >= 0, ">= 0"),
    ("distill", "temperature"): (lambda v: v > 0, "> 0"),
    ("distill", "features"): (lambda v: v >= 0, ">= 0"),
    ("run", "loggers"): (lambda v: set(v) <= {"jsonl", "csv", "tensorboard", "wandb"},
                         "a list of 'jsonl', 'csv', 'tensorboard', 'wandb'"),
}
_NO_RAW = object()


@functools.lru_cache(maxsize=None)
def _hints(section: str) -> Dict[str, Any]:
    """Field name -> resolved annotation of one section."""
    section_type = typing.get_type_hints(TrainConfig)[section]
    return typing.get_type_hints(section_type)


def _valid_keys(section: str) -> str:
    return ", ".join(_hints(section))


def _describe(tp: Any) -> str:
    """Human words for an annotation, for error messages."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union:
        return f"{_describe(next(a for a in args if a is not type(None)))} or null"
    if origin is tuple:
        items = {float: "numbers", int: "integers", str: "strings"}.get(args[0], "values")
        return f"a list of {items}" if args[-1] is Ellipsis else f"a list of {len(args)} {items}"
    if origin is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any) -> Any:
    """`value` checked against the annotation `tp`, converted only where lossless (int -> float).

    Raises TypeError on a mismatch (the caller names the key).
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union:  # Optional[X]
        return None if value is None else _coerce(value, next(a for a in args if a is not type(None)))
    if tp is Any or (tp in (bool, str) and type(value) is tp):
        return value
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is float and not isinstance(value, bool):
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis and isinstance(value, (list, tuple)):
        return tuple(_coerce(v, args[0]) for v in value)  # Tuple[X, ...]: any length
    if origin is tuple and isinstance(value, (list, tuple)) and len(value) == len(args):
        return tuple(_coerce(v, a) for v, a in zip(value, args))
    if origin is dict and isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _coerce(v, args[1]) for k, v in value.items()}
    raise TypeError


def _set(cfg: TrainConfig, key: str, value: Any, raw: Any = _NO_RAW) -> None:
    """Set the dotted `key` ("section.field" or "model.options.x") to a checked `value`.

    `raw` is an override's unparsed text: string fields take it when YAML read a number or a
    boolean, so `run.name=2024` and `run.amp=off` stay strings ("2024", "off").
    """
    section, _, rest = key.partition(".")
    if section not in SECTIONS:
        raise ConfigError(f"unknown config section {section!r} in {key!r}; valid sections: {', '.join(SECTIONS)}")
    hints = _hints(section)
    if not rest:
        raise ConfigError(f"{key!r} is a section; set one of its keys: {_valid_keys(section)}")
    fname, _, sub = rest.partition(".")
    if section == "optim" and fname in MOVED_TO_TASK and not sub:
        _move_to_task(cfg, fname, value)
        return
    if section == "model" and ((fname == "options" and sub) or (fname not in hints and not sub)):
        opt = sub if fname == "options" else fname
        if opt in hints:
            raise ConfigError(f"model.options.{opt} duplicates model.{opt}; set model.{opt} instead")
        if isinstance(raw, str) and not isinstance(value, (dict, list)):
            value = raw  # command-line text: create_model reads it by the field's type ("0011" stays a string)
        cfg.model.options[opt] = value  # checked later by create_model
        return
    if section in ("data", "task") and fname == "options" and sub:
        if "." in sub or (section == "data" and sub == "root"):
            raise ConfigError(f"bad {section} option key {key!r}" + ("; set data.root instead" if sub == "root" else ""))
        getattr(cfg, section).options[sub] = value  # checked later by create_dataset / create_task
        return
    if fname not in hints or sub:
        raise ConfigError(f"unknown config key {key!r}; valid keys of {section}: {_valid_keys(section)}")
    tp = hints[fname]
    if isinstance(raw, str) and str in (tp, *typing.get_args(tp)) and isinstance(value, (bool, int, float)):
        value = raw  # a scalar YAML did not read as a string: keep the text (`2024`, `off`)
    if (section, fname) == ("run", "amp") and value is False:
        value = "off"  # YAML 1.1 reads a bare `amp: off` as false
    if (section, fname) == ("run", "cuda_graph") and isinstance(value, bool):
        value = str(value).lower()  # `cuda_graph: true` in YAML
    try:
        value = _coerce(value, tp)
    except TypeError:
        raise ConfigError(f"{key} must be {_describe(tp)}, got {type(value).__name__} {value!r}") from None
    check = _CHECKS.get((section, fname))
    if check is not None and value is not None and not check[0](value):
        raise ConfigError(f"{key} must be {check[1]}, got {value!r}")
    if fname == "options":  # a whole mapping: each key obeys the rule above
        getattr(cfg, section).options = {}
        for k, v in value.items():
            _set(cfg, f"{section}.options.{k}", v)
        return
    setattr(getattr(cfg, section), fname, value)


def _move_to_task(cfg: TrainConfig, key: str, value: Any) -> None:
    """`optim.<key>` (a loss option before it moved to the task): `task.options.<key>`; its old default (as every
    saved run folder holds) means "the task's default" and is dropped."""
    if value == MOVED_TO_TASK[key] and type(value) is not str:
        return
    if key not in _NOTED:
        _NOTED.add(key)
        print(f"note: optim.{key} is now task.options.{key} (a loss option of the task); read as that",
              file=sys.stderr)
    cfg.task.options[key] = value
    cfg.task.moved = getattr(cfg.task, "moved", frozenset()) | {key}  # not a field: never saved


def task_options(cfg: TrainConfig, accepted: Any) -> Dict[str, Any]:
    """`task.options` for a task that takes the keyword names `accepted`, after dropping (from `cfg` too, so the
    saved config is clean) the options moved from `optim.*` that it does not take: they never applied to it
    (`optim.label_smoothing` in a detector's recipe)."""
    for k in getattr(cfg.task, "moved", frozenset()) - set(accepted):
        cfg.task.options.pop(k, None)
    return dict(cfg.task.options)


def _apply_dict(cfg: TrainConfig, d: Any, origin: str) -> None:
    if d is None:
        return
    if not isinstance(d, dict):
        raise ConfigError(f"{origin}: expected a mapping of sections ({', '.join(SECTIONS)}), got {type(d).__name__}")
    for section, body in d.items():
        if section not in SECTIONS:
            raise ConfigError(f"{origin}: unknown config section {section!r}; valid sections: {', '.join(SECTIONS)}")
        if body is None:
            continue
        if not isinstance(body, dict):
            raise ConfigError(f"{origin}: section {section!r} must be a mapping of keys ({_valid_keys(section)})")
        for k, v in body.items():
            try:
                _set(cfg, f"{section}.{k}", v)
            except ConfigError as e:
                raise ConfigError(f"{origin}: {e}") from None


def apply_mapping(cfg: TrainConfig, d: Any, origin: str) -> None:
    """Apply a nested mapping of sections (as a recipe file holds) in place; errors name `origin`."""
    _apply_dict(cfg, d, origin)


def set_key(cfg: TrainConfig, key: str, value: Any) -> None:
    """Set one dotted key (or an alias from `ALIASES`) to an already parsed value, checked like an override."""
    if "." not in key:
        if key not in ALIASES:
            raise ConfigError(f"unknown key {key!r}; use section.key (sections: {', '.join(SECTIONS)}) "
                              f"or an alias: {', '.join(ALIASES)}")
        key = ALIASES[key]
    _set(cfg, key, value)


def apply_override(cfg: TrainConfig, override: str) -> None:
    """Apply one `key=value` override in place (`key` dotted or an alias from `ALIASES`)."""
    key, eq, raw = override.partition("=")
    key = key.strip()
    if not eq or not key:
        raise ConfigError(f"malformed override {override!r}: expected key=value, e.g. optim.lr=1e-3")
    if "." not in key:
        if key not in ALIASES:
            raise ConfigError(
                f"unknown override key {key!r}; use section.key (sections: {', '.join(SECTIONS)}) "
                f"or an alias: {', '.join(ALIASES)}"
            )
        key = ALIASES[key]
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"{key}: cannot parse value {raw!r} ({str(e).splitlines()[0]})") from None
    if isinstance(value, int) and re.fullmatch(r"0[0-9]+", raw.strip()):
        value = raw.strip()  # YAML 1.1 reads 0011 as octal 9; flags like pooling=0011 mean the string
    _set(cfg, key, value, raw=raw.strip())


def load_config(path: Optional[str], overrides: Sequence[str] = (), base: Optional[TrainConfig] = None) -> TrainConfig:
    """Defaults (or a copy of `base`), then the YAML recipe at `path` (if any), then the overrides in order."""
    cfg = copy.deepcopy(base) if base is not None else TrainConfig()
    if path is not None:
        if not os.path.isfile(path):
            raise ConfigError(f"config file {path} does not exist")
        try:
            with open(path, encoding="utf-8") as f:
                d = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
        _apply_dict(cfg, d, path)
    for o in overrides:
        apply_override(cfg, o)
    return cfg


def config_keys() -> List[Tuple[str, str, Any, str]]:
    """(dotted key, type in words, default, the comment config.py carries) for every config key."""
    import inspect

    out = []
    defaults = TrainConfig()
    for section in SECTIONS:
        cls = type(getattr(defaults, section))
        comments, last = {}, None
        for line in inspect.getsource(cls).splitlines():
            m = re.match(r"\s+(\w+):[^#]*#\s*(.*)$", line)
            more = re.match(r"\s+#\s*(.*)$", line)
            if m:
                last = m.group(1)
                comments[last] = m.group(2).strip()
            elif more and last is not None:  # a comment that goes on below its field's line
                comments[last] += " " + more.group(1).strip()
            else:
                last = None
        for f in dataclasses.fields(cls):
            out.append((f"{section}.{f.name}", _describe(_hints(section)[f.name]), getattr(getattr(defaults, section), f.name),
                        comments.get(f.name, "")))
    return out


def config_help() -> str:
    """Every config key with its type, default and comment, for `spikeformers train --help`."""
    lines, section = [], None
    for key, tp, default, comment in config_keys():
        sec = key.split(".")[0]
        if sec != section:
            lines.append(f"{sec}:")
            section = sec
        shown = yaml.safe_dump(list(default) if isinstance(default, tuple) else default, default_flow_style=True)
        shown = shown.strip().removesuffix("...").strip()
        lines.append(f"  {key} ({tp}; default {shown}){': ' + comment if comment else ''}")
    aliases = ", ".join(f"{a}={k}" for a, k in ALIASES.items())
    return "\n".join(lines + [f"aliases: {aliases}"])


def config_to_dict(cfg: TrainConfig) -> Dict[str, Dict[str, Any]]:
    """Plain nested dict (lists instead of tuples), for YAML/JSON and checkpoints."""
    d = dataclasses.asdict(cfg)
    for section in d.values():
        for k, v in section.items():
            if isinstance(v, tuple):
                section[k] = list(v)
    return d


def config_from_dict(d: Dict[str, Any]) -> TrainConfig:
    """Inverse of `config_to_dict`, as strict as `load_config` (missing keys keep their defaults)."""
    cfg = TrainConfig()
    _apply_dict(cfg, d, "config")
    return cfg


def save_config(cfg: TrainConfig, path: str | os.PathLike) -> None:
    """Write `cfg` as YAML, atomically; `load_config(path)` gives back an equal config."""
    atomic_write_text(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
