"""A benchmark suite file: a base recipe plus axes over any config key, checked whole before any run.

    suite: attention_digits                  # name (default: the file's stem); the output folder's name
    description: every attention on digits   # free text, copied into the leaderboard
    recipe: ../configs/spikformer_tiny_digits.yaml   # optional base recipe (relative to this file)
    config:                                  # optional overrides of the recipe, nested by section
      schedule: {epochs: 10}
    axes:                                    # cross product of these values (dotted config keys or aliases)
      model.attention: [ssa, a2os2a, sdsa]
      run.seed: [0, 1, 2]
    runs:                                    # and/or an explicit list of override mappings (times the axes)
      - {model.twin: null}
      - {model.twin: ann}
    expect:                                  # reference ranges we measured: the report marks runs outside
      - where: {model.attention: ssa}
        test_acc: [0.95, 0.99]
    launcher: {jobs: 2, threads: 1}          # defaults of the local launcher (the command line wins)
    convert:                                 # optional: convert the finished runs that match `where` to
      where: {model.twin: qann_sa}           # spiking networks (`spikeformers to-snn RUN --T ...`), whose
      T: [4, 8, 16, 32, 64]                  # run folders <cell>_snn-T<k> join the leaderboard

Every cell is a full `TrainConfig` (recipe, then `config`, then the cell's overrides, then its run name
and folder); `check()` also builds its model on the meta device and checks its dataset and task
options, so an unknown key anywhere fails before the first run starts.
"""
from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from ..errors import ConfigError
from .stats import config_key, where_matches
from ..train.config import TrainConfig, apply_mapping, config_to_dict, load_config, set_key
from .._registry import check_options
from ..data import DATASETS, dataset_info
from ..models import create_model
from ..tasks import create_task
from ..train.config import ALIASES, config_to_dict

__all__ = ["Cell", "Suite", "load_suite", "cell_name", "cell_values", "SUITE_KEYS"]

SUITE_KEYS = ("suite", "description", "recipe", "config", "axes", "runs", "expect", "launcher", "convert")
LAUNCHER_KEYS = ("jobs", "threads", "gpus_per_run")


def _value_text(v: Any) -> str:
    s = "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
    return re.sub(r"[^A-Za-z0-9.+-]+", "", s.replace(" ", "")) or "x"


def cell_name(overrides: Dict[str, Any]) -> str:
    """A folder name from a cell's axis values: {"model.attention": "ssa", "run.seed": 0} -> attention-ssa_seed-0."""
    if not overrides:
        return "base"
    return "_".join(f"{k.split('.')[-1]}-{_value_text(v)}" for k, v in overrides.items())


@dataclass
class Cell:
    """One run of a suite: its name (folder), the overrides that make it, and its resolved config."""
    name: str
    overrides: Dict[str, Any]
    config: Any  # TrainConfig


@dataclass
class Suite:
    name: str
    path: str
    description: str
    recipe: Optional[str]
    base: Dict[str, Any]  # the `config` mapping (sections of overrides)
    cells: List[Cell]
    expect: List[Dict[str, Any]]
    launcher: Dict[str, Any] = field(default_factory=dict)
    convert: Optional[Dict[str, Any]] = None  # {"where": {key: value}, "T": [int, ...]}: cells to convert after training

    def to_convert(self) -> List[Cell]:
        """The cells whose finished runs `convert` turns into spiking runs."""
        if not self.convert:
            return []
        return [c for c in self.cells if where_matches(self.convert["where"], cell_values(c))]

    @property
    def axes(self) -> List[str]:
        """The config keys that vary between cells, in order of first appearance."""
        keys: List[str] = []
        for c in self.cells:
            keys += [k for k in c.overrides if k not in keys]
        return keys


def _mapping(path: str, what: str, v: Any) -> Dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ConfigError(f"{path}: {what} must be a mapping, got {type(v).__name__}")
    return v


def _combinations(path: str, axes: Dict[str, Any], runs: Any) -> List[Dict[str, Any]]:
    for k, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: axis {k!r} must be a non-empty list of values, got {values!r}")
    if runs is None:
        runs = [{}]
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs) or not runs:
        raise ConfigError(f"{path}: runs must be a non-empty list of key: value mappings")
    product = [dict(zip(axes, vals)) for vals in itertools.product(*axes.values())]
    return [{**r, **p} for r in runs for p in product]


def load_suite(path: str, out_dir: Optional[str] = None) -> Suite:
    """Read and check a suite file; cells get `run.out_dir` = `out_dir` (default runs/<suite name>)."""
    if not os.path.isfile(path):
        raise ConfigError(f"suite file {path} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            d = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(e).split())[:200]}") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: a suite file is a mapping with keys {', '.join(SUITE_KEYS)}")
    bad = sorted(set(d) - set(SUITE_KEYS))
    if bad:
        raise ConfigError(f"{path}: unknown suite key(s) {', '.join(map(repr, bad))}; valid keys: {', '.join(SUITE_KEYS)}")
    name = str(d.get("suite") or os.path.splitext(os.path.basename(path))[0])
    try:  # the suite's folder is runs/<name>: the rules of run.name keep it there
        set_key(TrainConfig(), "run.name", name)
    except ConfigError:
        raise ConfigError(f"{path}: the suite name {name!r} must be a plain folder name, as run.name (no '/', "
                          f"not '..'): its runs go to runs/<suite name>") from None
    recipe = d.get("recipe")
    if recipe is not None and (not isinstance(recipe, str) or not recipe.strip()):
        raise ConfigError(f"{path}: recipe must be the path of a recipe file, got {recipe!r}")
    if recipe is not None:
        recipe = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), recipe))
        if not os.path.isfile(recipe):
            raise ConfigError(f"{path}: recipe {d['recipe']!r} does not exist (looked for {recipe})")
    base = _mapping(path, "config", d.get("config"))
    launcher = _mapping(path, "launcher", d.get("launcher"))
    bad = sorted(set(launcher) - set(LAUNCHER_KEYS))
    if bad:
        raise ConfigError(f"{path}: unknown launcher key(s) {', '.join(map(repr, bad))}; valid: {', '.join(LAUNCHER_KEYS)}")
    out_dir = out_dir or os.path.join("runs", name)
    cells, seen, experiments = [], set(), {}
    for ov in _combinations(path, _mapping(path, "axes", d.get("axes")), d.get("runs")):
        cname = cell_name(ov)
        if cname in seen:
            raise ConfigError(f"{path}: two runs share the name {cname!r}; make their overrides differ")
        seen.add(cname)
        try:
            cfg = load_config(recipe)
            apply_mapping(cfg, base, "config")
            for k, v in {**ov, "run.out_dir": out_dir, "run.name": cname}.items():
                set_key(cfg, k, v)
        except ConfigError as e:
            raise ConfigError(f"{path}: run {cname}: {e}") from None
        twin = experiments.setdefault((config_key(config_to_dict(cfg)), cfg.run.seed), cname)
        if twin != cname:  # 0.001 and "1e-3", or a bookkeeping key alone, make no second experiment
            raise ConfigError(f"{path}: runs {twin} and {cname} are the same experiment with the same seed (the "
                              f"leaderboard would count them as two seeds); make their overrides differ")
        cells.append(Cell(cname, ov, cfg))
    expect = d.get("expect") or []
    if not isinstance(expect, list) or not all(isinstance(e, dict) and isinstance(e.get("where", {}), dict)
                                               for e in expect):
        raise ConfigError(f"{path}: expect must be a list of {{where: {{key: value}}, METRIC: [low, high]}}")
    suite = Suite(name, path, str(d.get("description") or ""), recipe, base, cells, expect, launcher,
                  _convert_spec(path, d.get("convert")))
    for c in cells:
        check_cell(path, c)
    if suite.convert and not suite.to_convert():
        raise ConfigError(f"{path}: convert.where {suite.convert['where']!r} matches no run")
    return suite


def _convert_spec(path: str, v: Any) -> Optional[Dict[str, Any]]:
    """`convert:` checked: {"where": mapping of config keys (aliases too), "T": non-empty list of T >= 1}."""
    if v is None:
        return None
    v = _mapping(path, "convert", v)
    bad = sorted(set(v) - {"where", "T"})
    if bad:
        raise ConfigError(f"{path}: unknown convert key(s) {', '.join(map(repr, bad))}; valid: where, T")
    Ts = v.get("T")
    if not isinstance(Ts, list) or not Ts or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 1 for t in Ts):
        raise ConfigError(f"{path}: convert.T must be a non-empty list of time steps >= 1, got {Ts!r}")
    return {"where": _mapping(path, "convert.where", v.get("where")), "T": Ts}


def cell_values(cell: Cell) -> Dict[str, Any]:
    """A cell's resolved config as dotted keys and their aliases ("model.twin" and "twin")."""
    flat = {f"{sec}.{k}": v for sec, body in config_to_dict(cell.config).items() if isinstance(body, dict)
            for k, v in body.items()}
    flat.update({alias: flat[key] for alias, key in ALIASES.items() if key in flat})
    return flat


def check_cell(path: str, cell: Cell) -> None:
    """Build the cell's model on the meta device and check its dataset and task options (no data loaded)."""
    import torch


    cfg = cell.config
    where = f"{path}: run {cell.name}"
    try:
        builder = DATASETS.get(cfg.data.name)
        check_options(f"dataset {cfg.data.name!r}", builder, {**cfg.data.options, **({"root": cfg.data.root} if cfg.data.root else {})})
        info = dataset_info(cfg.data.name)
        task_name = cfg.task.name or info.get("task", "classify")
        task = create_task(task_name, cfg, **cfg.task.options)
        kind = info.get("kind", "tokens" if info.get("layout") == "tokens" else "array")
        if kind != task.data_kind:
            raise ValueError(f"task {task_name!r} cannot train on dataset {cfg.data.name!r} ({kind} data)")
        kw = _model_kwargs(info, cfg)
        with torch.device("meta"):
            create_model(cfg.model.name, **kw)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{where}: {' '.join(str(e).split())}") from None


def _model_kwargs(info: Dict[str, Any], cfg: Any) -> Dict[str, Any]:
    """create_model keywords from what a dataset declares at registration (no data loaded) and the config."""
    layout = info.get("layout")
    if layout == "tokens":
        kw: Dict[str, Any] = {"vocab_size": info.get("vocab_size", 256),
                              "block_size": cfg.data.options.get("seq_len", info.get("seq_len", 256))}
    elif layout == "sequence":
        kw = {"seq_len": info.get("seq_len"), "in_features": info.get("in_features"), "num_classes": info.get("num_classes")}
    else:
        kw = {"img_size": cfg.data.options.get("img_size", info.get("img_size")), "in_chans": info.get("in_chans"),
              "num_classes": info.get("num_classes")}
        if layout == "events":
            kw["T"] = cfg.data.options.get("frames", info.get("frames"))
    kw = {k: v for k, v in kw.items() if v is not None}
    m = cfg.model
    kw.update({k: getattr(m, k) for k in ("attention", "neuron", "T", "encoder", "twin") if getattr(m, k) is not None})
    kw.update(m.options)
    return kw


def expectations(suite_expect: Sequence[Dict[str, Any]]) -> List[Tuple[Dict[str, Any], str, float, float]]:
    """(where, metric, low, high) for every range in `expect`."""
    out = []
    for e in suite_expect:
        for k, v in e.items():
            if k == "where":
                continue
            if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v)):
                raise ConfigError(f"expect: {k} must be [low, high], got {v!r}")
            out.append((e.get("where", {}), k, float(v[0]), float(v[1])))
    return out
