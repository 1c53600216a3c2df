"""The leaderboard of a suite folder, from its run directories alone (config.yaml, summary.json,
metrics.jsonl): one row per configuration, seeds aggregated as mean, sample standard deviation and n.

    rows = leaderboard("runs/attention_digits")           # list of dicts, best first
    write_leaderboard("runs/attention_digits")            # leaderboard.csv / .md / .json (+ plots)

A configuration is a run's config without the keys that do not change the experiment (the seed, the
run's name and folder, logging, threads, the device and whether the step was graphed or compiled).
Energies are per sample (image or sequence) from each run's own summary: the 45 nm compute model and
the memory-aware model (Lemaire) of the model itself, and its ratio to its dense ANN twin's 45 nm
energy. For a QANN row the memory-aware energy is that of its ceil(log2(T + 1))-bit activations.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from ..errors import ConfigError
from ..tasks import TASKS
from .stats import NOT_EXPERIMENT, config_key, mean_std, pareto_front, where_matches
from ..train.config import ALIASES
from ..io import atomic_write_json, atomic_write_text
from .plots import plot_suite

__all__ = ["collect_runs", "leaderboard", "write_leaderboard", "mean_std", "pareto_front", "COLUMNS", "config_key"]

#: run.* keys that do not change what is measured (the seed is aggregated over)

COLUMNS = ["model", "attention", "neuron", "encoder", "T", "twin", "dataset", "task", "parameters", "metric",
           "metric_mean", "metric_std", "n", "mean_firing_rate", "synaptic_ops", "energy_45nm_uJ",
           "energy_memory_uJ", "energy_vs_ann", "throughput", "throughput_unit", "peak_memory_gb", "wall_time_s",
           "device", "torch", "cuda", "commit", "seeds", "runs", "check"]


def _read_json(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def collect_runs(folder: str) -> List[Dict[str, Any]]:
    """Every finished run directory directly under `folder`: {name, dir, config, summary, metrics}."""
    if not os.path.isdir(folder):
        raise ConfigError(f"{folder} is not a folder of runs")
    runs = []
    for name in sorted(os.listdir(folder)):
        d = os.path.join(folder, name)
        summary = _read_json(os.path.join(d, "summary.json"))
        if name.startswith(".") or summary is None or not summary.get("finished"):
            continue
        try:
            with open(os.path.join(d, "config.yaml"), encoding="utf-8") as f:
                config = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError):
            continue
        metrics = []
        try:
            with open(os.path.join(d, "metrics.jsonl"), encoding="utf-8") as f:
                metrics = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError):
            pass
        runs.append({"name": name, "dir": d, "config": config, "summary": summary, "metrics": metrics})
    return runs


def _model_parts(summary: Dict[str, Any], config: Dict[str, Any]) -> Dict[str, Any]:
    """Model, attention, neuron, encoder, T and twin of a run. The attention is the design's: the one the
    config asks for (a twin's softmax replaces it), else the model's own."""
    mc = summary.get("model_config") or {}
    m = config.get("model", {})
    attn = m.get("attention") or "+".join(str(v) for k, v in mc.items()
                                          if (k == "attention" or k.endswith("_attention")) and v) or None
    return {"model": summary.get("model"), "attention": attn, "neuron": mc.get("neuron", m.get("neuron")),
            "encoder": mc.get("encoder", m.get("encoder")), "T": mc.get("T", m.get("T")),
            "twin": "converted" if summary.get("conversion") else mc.get("twin", m.get("twin")) or "snn"}


def _energies(summary: Dict[str, Any], twin: str) -> Dict[str, Optional[float]]:
    e = summary.get("energy") or {}
    e45, mem = e.get("snn_uJ"), e.get("snn_lemaire_uJ")
    if twin in ("qann", "qann_sa"):  # its activations are low-bit integers times a scale: cost them as such
        mem = e.get("qann_uJ", mem)
    ann = e.get("ann_twin_uJ")
    ops = (e.get("snn_ac") or 0) + (e.get("snn_mac") or 0) if e else None
    return {"energy_45nm_uJ": e45, "energy_memory_uJ": mem, "energy_vs_ann": e45 / ann if e45 and ann else None,
            "synaptic_ops": ops}


def _throughput(run: Dict[str, Any]) -> Tuple[Optional[float], Optional[str]]:
    """Median training throughput over epochs (the first excluded when there are more: compilation)."""
    recs = run["metrics"][1:] if len(run["metrics"]) > 1 else run["metrics"]
    for unit in ("images", "tokens"):
        vals = [r[f"{unit}_per_s"] for r in recs if f"{unit}_per_s" in r]
        if vals:
            return statistics.median(vals), unit
    return None, None


def leaderboard(folder: str, expect: Sequence[Tuple[Dict[str, Any], str, float, float]] = ()) -> List[Dict[str, Any]]:
    """One row per configuration of the finished runs in `folder`, best metric first.

    `expect`: (where, metric, low, high) reference ranges (`spec.expectations`); a row whose runs all
    match `where` and whose mean lies outside [low, high] is marked in `check`.
    """

    groups: Dict[str, List[Dict[str, Any]]] = {}
    for run in collect_runs(folder):
        groups.setdefault(config_key(run["config"]), []).append(run)
    rows = []
    for runs in groups.values():
        s0, c0 = runs[0]["summary"], runs[0]["config"]
        metric = s0.get("metric", "test_acc")
        parts = _model_parts(s0, c0)
        row: Dict[str, Any] = {**parts, "dataset": s0.get("dataset"), "task": s0.get("task", "classify"),
                               "parameters": s0.get("parameters"), "metric": metric}
        row["values"] = [r["summary"].get(metric) for r in runs]
        row["metric_mean"], row["metric_std"], row["n"] = mean_std(row["values"])
        row["mean_firing_rate"] = mean_std([r["summary"].get("mean_firing_rate") for r in runs])[0] \
            if parts["twin"] in ("snn", "converted") else None
        energies = [_energies(r["summary"], parts["twin"]) for r in runs]
        for k in ("energy_45nm_uJ", "energy_memory_uJ", "energy_vs_ann", "synaptic_ops"):
            row[k] = mean_std([e[k] for e in energies])[0]
        tp = [_throughput(r) for r in runs]
        row["throughput"] = mean_std([t for t, _ in tp])[0]
        row["throughput_unit"] = next((u for _, u in tp if u), None)
        row["peak_memory_gb"] = mean_std([r["summary"].get("peak_memory_gb") for r in runs])[0]
        row["wall_time_s"] = mean_std([r["summary"].get("train_time_s") for r in runs])[0]
        for k, src in (("device", "device"), ("torch", "torch"), ("cuda", "cuda"), ("commit", "git_commit")):
            vals = sorted({str(r["summary"].get(src)) for r in runs if r["summary"].get(src) is not None})
            row[k] = "; ".join(vals) if vals else None
        row["seeds"] = sorted(r["config"].get("run", {}).get("seed") for r in runs)
        row["runs"] = [r["name"] for r in runs]
        row["settings"] = {k: v for k, v in _flat(c0).items() if "." in k and k.split(".", 1)[1] not in NOT_EXPERIMENT}
        checks = []
        for where, m, lo, hi in expect:
            if m != metric.split("_", 1)[-1] and m != metric:
                continue
            flat = [_flat(r["config"]) for r in runs]
            if all(where_matches(where, f) for f in flat) and row["metric_mean"] is not None \
                    and not lo <= row["metric_mean"] <= hi:
                checks.append(f"outside expected [{lo:g}, {hi:g}]")
        row["check"] = "; ".join(checks) or ("ok" if any(all(where_matches(w, _flat(r["config"])) for r in runs)
                                                         for w, *_ in expect) else "")
        rows.append(row)
    metrics = list(dict.fromkeys(r["metric"] for r in rows))  # each metric's rows together, best first
    rows.sort(key=lambda r: (metrics.index(r["metric"]), r["metric_mean"] is None,
                             -(r["metric_mean"] or 0) if _higher_is_better(r["task"]) else (r["metric_mean"] or 0)))
    return rows


def _higher_is_better(task: Any) -> bool:
    """The task's own direction (accuracy, mAP: higher; bits per character: lower)."""
    return getattr(TASKS.get(task), "higher_is_better", True) if task in TASKS else True


def _flat(config: Dict[str, Any]) -> Dict[str, Any]:
    """A config as dotted keys ("model.attention": "ssa", "run.seed": 0), aliases too ("attention", "seed")."""
    flat = {f"{s}.{k}": v for s, body in config.items() if isinstance(body, dict) for k, v in body.items()}
    for alias, key in ALIASES.items():
        if key in flat:
            flat[alias] = flat[key]
    return flat


def _fmt(v: Any, key: str = "") -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if key in ("metric_mean", "metric_std"):
            return f"{v:.4f}"
        return f"{v:.4g}"
    if isinstance(v, list):
        return " ".join(map(str, v))
    return str(v)


def to_markdown(rows: List[Dict[str, Any]], title: str = "") -> str:
    cols = ["model", "attention", "neuron", "encoder", "T", "twin", "dataset", "parameters"]
    head = cols + ["metric (mean ± std, n)", "firing rate", "synaptic ops", "E 45 nm (uJ)", "E memory (uJ)",
                   "E / ANN", "throughput", "peak GB", "wall s", "device", "check"]
    lines = [f"# {title}\n" if title else "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        m = r["metric"].split("_", 1)[-1]
        val = "" if r["metric_mean"] is None else (
            f"{r['metric_mean']:.4f}" + (f" ± {r['metric_std']:.4f}" if r["metric_std"] is not None else "") + f" (n={r['n']})")
        fr = "" if r["mean_firing_rate"] is None else f"{100 * r['mean_firing_rate']:.2f}%"
        tp = "" if r["throughput"] is None else f"{r['throughput']:.0f} {r['throughput_unit']}/s"
        cells = [_fmt(r[c], c) for c in cols] + [f"{m} {val}", fr, _fmt(r["synaptic_ops"]), _fmt(r["energy_45nm_uJ"]),
                                                  _fmt(r["energy_memory_uJ"]), _fmt(r["energy_vs_ann"]), tp,
                                                  _fmt(r["peak_memory_gb"]), _fmt(r["wall_time_s"]), _fmt(r["device"]),
                                                  _fmt(r["check"])]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines).lstrip("\n") + "\n"


def to_csv(rows: List[Dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(r.get(k)) if isinstance(r.get(k), list) else r.get(k) for k in COLUMNS})
    return buf.getvalue()


def write_leaderboard(folder: str, expect: Sequence[Tuple[Dict[str, Any], str, float, float]] = (), title: str = "",
                      axes: Sequence[str] = (), plots: bool = True) -> Dict[str, Any]:
    """leaderboard.csv, .md and .json (and plots) in `folder`, atomically; returns the rows and paths.
    A folder without finished runs is a one-line error, and nothing is written into it."""

    rows = leaderboard(folder, expect)
    if not rows:
        raise ConfigError(f"no finished runs in {folder} (a run is finished when its summary.json says so)")
    paths = {ext: os.path.join(folder, f"leaderboard.{ext}") for ext in ("csv", "md", "json")}
    atomic_write_text(paths["csv"], to_csv(rows))
    atomic_write_text(paths["md"], to_markdown(rows, title))
    atomic_write_json(paths["json"], {"title": title, "rows": rows})
    out = {"rows": rows, "paths": paths}
    if plots and rows:

        out["plots"] = plot_suite(folder, rows, axes)
    return out
