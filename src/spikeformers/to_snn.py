"""`convert_to_snn` and `spikeformers to-snn RUN --T 4 8 16 32 64`: a trained QANN run (`model.twin=qann_sa`)
as spiking run folders, one per T, with the accuracy-versus-T record and plot.

    snn = convert_to_snn("runs/digits_qann", T=32)        # or a QANN model built by create_model
    res = to_snn("runs/digits_qann", [4, 8, 16, 32])      # run folders runs/digits_qann_snn-T4, ...

Each run folder is an ordinary run: config.yaml (the QANN's, with `model.options.conversion = {T, signed}`
and `run.amp=off`), checkpoint/ (safetensors), summary.json (its metrics at that T, firing rates, energy,
and `conversion`: the source run, T, the QANN's metric), provenance.json (`converted_from`, T). So `eval`,
`energy`, `predict`, `export` and suite leaderboards read it. Next to them: `<source>_snn.json` (every T,
the QANN, energies) and `<source>_snn.png` (accuracy against T).

This module reads and writes run folders: it sits above training and energy (the package's other modules sit
below the models).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from torch import nn

from .energy.summary import energy_headline, energy_sample
from .energy.twin import ann_energy, count_twin, qann_energy
from .errors import ConfigError
from .io import atomic_write_json, save_checkpoint
from .models import count_parameters, model_info
from .models.conversion.convert import check_conversion, convert_model
from .neurons.quant import QuantNode
from .plotting import pyplot, save_figure
from .train.config import config_to_dict, save_config
from .train.evaluate import load_trained_model
from .train.run import build_task, device_name, load_run, provenance
from .train.rundir import read_marker, refuse_links
from .version import __version__

__all__ = ["convert_to_snn", "to_snn", "plot_accuracy_vs_T"]


def convert_to_snn(model_or_run: Union[nn.Module, str, os.PathLike], T: int, *, signed: bool = True,
                   device: str = "auto") -> nn.Module:
    """The spiking network equivalent to a QANN (twin="qann_sa"), of T steps: from a model built by
    `create_model` (left unchanged; the result is a converted copy) or a run folder (its checkpoint).
    The result is an ordinary model of the zoo: `create_model(name, **model_args)` rebuilds it."""
    if isinstance(model_or_run, (str, os.PathLike)):
        model = load_trained_model(str(model_or_run), device)[0]
    else:
        model = model_or_run
    name, args = getattr(model, "model_name", None), getattr(model, "model_args", None)
    if name is None or args is None:
        raise ConfigError(f"{type(model).__name__} was not built by create_model (no model_name/model_args)")
    if "conversion" in args:
        raise ConfigError(f"this model is already a converted spiking network (conversion={args['conversion']})")
    opts = check_conversion({"T": T, "signed": signed})
    snn = copy.deepcopy(model).eval()
    convert_model(snn, opts["T"], family=model_info(name).get("family"), signed=opts["signed"])
    snn.model_name, snn.model_args = name, {**args, "conversion": opts}
    return snn


def _folder_state(folder: str, source: str) -> str:
    """"new", "finished" (a finished conversion of `source`), "redo" (an unfinished one of `source`), or
    "foreign" (something else: never overwritten)."""
    if not os.path.lexists(folder):
        return "new"
    if os.path.islink(folder) or (read_marker(folder) or {}).get("converted_from") != source:
        return "foreign"
    return "finished" if (read_marker(folder, "summary.json") or {}).get("finished") else "redo"


def _qann_energy(model: nn.Module, x: torch.Tensor) -> Dict[str, Any]:
    """The QANN's own energy per image, its operations counted dense (as a twin's): every operation a MAC
    under the 45 nm model, and the memory-aware model with its own activation bits (its quantizers') and
    8-bit weights."""
    bits = max(m.bits for m in model.modules() if isinstance(m, QuantNode))
    counts = count_twin(model, x)
    return {"energy_45nm_uJ": ann_energy(counts).total * 1e-6, "act_bits": bits, "mac": counts.total_ops,
            "energy_memory_uJ": qann_energy(counts, 2 ** bits - 1).total * 1e-6}  # ceil(log2(L + 1)) = bits


def to_snn(run_dir: str, Ts: Sequence[int], out: Optional[str] = None, *, signed: bool = True, device: str = "auto",
           say=print) -> Dict[str, Any]:
    """Convert a finished QANN run at every T of `Ts`: one run folder per T under `out` (default: next to
    the run), `<run>_snn.json` and (several T) `<run>_snn.png`. Returns that record."""
    if not Ts:
        raise ConfigError("to-snn needs at least one T")
    Ts = sorted({check_conversion({"T": int(T)})["T"] for T in Ts})
    run_dir = os.path.normpath(run_dir)
    cfg, src_summary = load_run(run_dir)
    if cfg.model.twin != "qann_sa":
        raise ConfigError(f"{run_dir} is a model.twin={cfg.model.twin} run; conversion needs a QANN trained with "
                          f"model.twin=qann_sa (quantized ReLUs, spiking attention form): docs/conversion.md")
    source = os.path.abspath(run_dir)
    base = os.path.basename(source)
    out = out or os.path.dirname(source)
    folders = {T: os.path.join(out, f"{base}_snn-T{T}") for T in Ts}
    states = {T: _folder_state(f, source) for T, f in folders.items()}
    foreign = [f for T, f in folders.items() if states[T] == "foreign"]
    if foreign:
        raise ConfigError(f"{foreign[0]} exists and is not a conversion of {run_dir}: remove it or pass --out")
    qann, cfg, dataset = load_trained_model(run_dir, device)
    batch = cfg.data.eval_batch_size
    task = build_task(cfg, dataset)
    _, loaders = task.loaders(dataset)
    split = list(loaders)[-1]
    metric = f"{split}_{task.metric}"
    x = energy_sample(loaders[split])
    t0 = time.time()
    qann_eval = task.evaluate_splits(qann, loaders, None)  # fp32: the values the SNN converges to
    record: Dict[str, Any] = {
        "source_run": source, "model": cfg.model.name, "dataset": cfg.data.name, "metric": metric, "signed": signed,
        "qann": {metric: qann_eval[metric], f"{metric}_summary": src_summary.get(metric), **_qann_energy(qann, x)},
        "snn": [],
    }
    say(f"QANN {run_dir}: {metric} {qann_eval[metric]:.4f} (fp32, {time.time() - t0:.1f} s)")
    for T in Ts:
        folder = folders[T]
        if states[T] == "finished":
            with open(os.path.join(folder, "summary.json"), encoding="utf-8") as f:
                s = json.load(f)
            say(f"T={T}: {folder} is finished; kept")
        else:
            # a converted network holds every layer's running sums for T steps: keep T x batch at the recipe's own
            # evaluation at T = 4 (a QKFormer's T = 64 evaluation at the recipe's batch needs ~37 GiB more)
            cfg.data.eval_batch_size = max(1, batch * 4 // T)
            s = _write_run(qann, cfg, src_summary, dataset, task, task.loaders(dataset)[1], x, T, signed, folder,
                           source, record)
            say(f"T={T}: {metric} {s[metric]:.4f}, firing rate {100 * s['mean_firing_rate']:.2f}%, "
                f"{s['eval_time_s']:.1f} s -> {folder}")
        e = s.get("energy") or {}
        record["snn"].append({"T": T, "run_dir": folder, metric: s[metric], "mean_firing_rate": s["mean_firing_rate"],
                              "energy_45nm_uJ": e.get("snn_uJ"), "energy_memory_uJ": e.get("snn_lemaire_uJ"),
                              "ac": e.get("snn_ac"), "mac": e.get("snn_mac")})
    record["path"] = os.path.join(out, f"{base}_snn.json")
    atomic_write_json(record["path"], record)
    if len(Ts) > 1:
        record["plot"] = plot_accuracy_vs_T(record, os.path.join(out, f"{base}_snn.png"))
    return record


def _write_run(qann: nn.Module, cfg, src_summary: Dict[str, Any], dataset, task, loaders, x: torch.Tensor, T: int,
               signed: bool, folder: str, source: str, record: Dict[str, Any]) -> Dict[str, Any]:
    """One converted run folder: config, provenance, checkpoint, then its evaluation in summary.json."""
    snn = convert_to_snn(qann, T, signed=signed)
    c = copy.deepcopy(cfg)
    c.model.options = {**c.model.options, "conversion": dict(snn.model_args["conversion"])}
    c.run.amp, c.run.name, c.run.out_dir = "off", os.path.basename(folder), os.path.dirname(folder)
    if os.path.lexists(folder):  # an unfinished conversion of this run (`_folder_state`): ours
        refuse_links(folder)
    else:
        os.makedirs(os.path.dirname(folder) or ".", exist_ok=True)
        os.mkdir(folder)  # fails rather than share a folder another process just made
    dev = next(snn.parameters()).device
    prov = {"converted_from": source, "T": T, "signed": signed, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **provenance(), "device": device_name(dev)}
    atomic_write_json(os.path.join(folder, "provenance.json"), prov)
    save_config(c, os.path.join(folder, "config.yaml"))

    state = {k: v.detach().contiguous() for k, v in snn.state_dict().items()}
    save_checkpoint(os.path.join(folder, "checkpoint"), model_state=state, train_state={"epoch": 0},
                    meta={"config": config_to_dict(c), "model_name": snn.model_name, "model_args": snn.model_args,
                          "version": __version__, "converted_from": source}, keep=1)
    t0 = time.time()
    s: Dict[str, Any] = {"run_dir": folder, "finished": True, "task": task.name, "metric": record["metric"],
                         "model": c.model.name, "model_args": snn.model_args, "dataset": c.data.name,
                         "parameters": count_parameters(snn), "epochs": src_summary.get("epochs"),
                         "steps": src_summary.get("steps")}
    s.update(task.evaluate_splits(snn, loaders, None))
    s["eval_time_s"] = time.time() - t0
    s.update({"model_config": dataclasses.asdict(snn.cfg), "device": device_name(dev), "amp": "off",
              "conversion": {"source_run": source, "T": T, "signed": signed,
                             "qann_metric": record["qann"][record["metric"]]}, **provenance()})
    s["energy"] = energy_headline(snn, x, c, dataset, task=task)
    atomic_write_json(os.path.join(folder, "summary.json"), s)
    return s


def plot_accuracy_vs_T(record: Dict[str, Any], path: str) -> str:
    """The converted SNN's metric against T (log scale), the QANN's as a line, with 1 point below it."""
    plt = pyplot()
    m = record["metric"]
    Ts = [r["T"] for r in record["snn"]]
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.plot(Ts, [100 * r[m] for r in record["snn"]], "o-", label="converted SNN")
    q = 100 * record["qann"][m]
    ax.axhline(q, color="tab:green", label=f"QANN ({q:.2f})")
    ax.axhline(q - 1, color="tab:green", ls=":", lw=1, label="QANN - 1 point")
    ax.set_xscale("log", base=2)
    ax.set_xticks(Ts, [str(t) for t in Ts])
    ax.set_xlabel("time steps T"), ax.set_ylabel(f"{m.replace('_', ' ')} (%)"), ax.grid(alpha=0.3)
    ax.set_title(f"{record['model']} on {record['dataset']}: QANN -> SNN", fontsize=9)
    ax.legend(fontsize=8)
    save_figure(fig, path)
    plt.close(fig)
    return path
