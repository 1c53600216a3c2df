"""`spikeformers energy MODEL|RUN_DIR [key=value ...] [options]`: per-layer table, totals, files.

    spikeformers energy spikformer_4_384 --data fashion_mnist      # untrained weights, real images
    spikeformers energy runs/digits_spikformer_tiny_s0             # trained weights, the run's data
    spikeformers energy spikformer_tiny attention=a2os2a --model-energy lemaire --multi-spike-max 4

MODEL is a registered name (untrained weights; --data adapts img_size, in_chans and num_classes as
training does; without --data the input is uniform noise of the model's own shape) or a run
directory (its checkpoint and its dataset). Writes energy.json and energy.png to --out (default:
the run directory, or runs/energy_<model>_<data>).
"""
from __future__ import annotations

import argparse
import os
from typing import Any, Dict, List, Tuple

import torch
import yaml

from ..data import DeviceLoader, create_dataset
from ..energy import MODEL_ENERGIES, PRESETS, LemaireCosts, energy_report
from ..energy.report import format_count
from ..energy.summary import ENERGY_SAMPLE, energy_sample
from ..models import count_parameters, create_model, footprint, model_info
from ..train.evaluate import load_trained_model
from ..train.run import build_task, resolve_device

__all__ = ["add_energy_arguments", "run_energy_command", "parse_overrides"]


def add_energy_arguments(p: argparse.ArgumentParser) -> None:

    p.add_argument("target", metavar="MODEL|RUN_DIR", help="registered model name or run directory")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="model options for a registered name (e.g. attention=a2os2a T=2)")
    p.add_argument("--data", help="dataset for a model name (default: noise of the model's input shape)")
    p.add_argument("--model-energy", choices=MODEL_ENERGIES, default="horowitz45",
                   help="energy model of the per-layer column (both totals are always printed)")
    p.add_argument("--batch", type=int, default=ENERGY_SAMPLE,
                   help=f"images (sequences) counted (default {ENERGY_SAMPLE}; for a run, its first test samples, "
                        f"as in summary.json and eval)")
    p.add_argument("--seq-len", type=int, default=64, help="tokens per sequence of a language model's noise input")
    p.add_argument("--preset", choices=list(PRESETS), default="fp32", help="45 nm energies per MAC/AC")
    p.add_argument("--first-layer-times-T", dest="first_layer_times_T", action="store_true", default=None,
                   help="charge the analog first layer at every time step")
    p.add_argument("--no-first-layer-times-T", dest="first_layer_times_T", action="store_false",
                   help="charge it once, as the papers' formula (default: once iff its input repeats over T)")
    p.add_argument("--multi-spike-max", type=int, default=None, metavar="K",
                   help="count non-negative integer inputs <= K as K accumulates at most (1: strict binary; "
                        "default: D of the model's integer-valued neurons, else 1)")
    p.add_argument("--weight-bits", type=int, default=8, help="weight bits of the SNN and QANN (memory model)")
    p.add_argument("--memory", choices=("iconip", "bank"), default="iconip", help="SRAM access model (Lemaire)")
    p.add_argument("--out", help="output folder for energy.json and energy.png")
    p.add_argument("--device", default="auto", help="auto (default: cuda when available), cpu, cuda")
    p.add_argument("--seed", type=int, default=0, help="seed of untrained weights and noise inputs")


def parse_overrides(items: List[str]) -> Dict[str, Any]:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"expected key=value model options after the model, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k] = yaml.safe_load(v)
        except yaml.YAMLError as e:
            raise ValueError(f"{k}: cannot read the value {v!r} ({' '.join(str(e).split())[:120]})") from None
    return out


def _first_batch(dataset, n: int, device) -> Any:
    loader = DeviceLoader(dataset.test_x.to(device), dataset.test_y.to(device), n, shuffle=False, augment=None, seed=0,
                          layout=dataset.layout)
    return next(iter(loader))[0]


def _run_batch(cfg, dataset, n: int):
    """The first `n` samples of a run's test split, as its task's loader yields them."""
    return energy_sample(list(build_task(cfg, dataset).loaders(dataset)[1].values())[-1], n)


def _load(ns) -> Tuple[Any, Any, Dict[str, Any], str]:
    """(model, x, info, default out dir)."""
    device = resolve_device(ns.device)
    if ns.batch < 1:
        raise ValueError(f"--batch must be >= 1, got {ns.batch}")
    if os.path.isdir(ns.target):
        if ns.overrides:
            raise ValueError("a run directory brings its own model: give no key=value options")
        model, cfg, dataset = load_trained_model(ns.target, device=str(device))
        if ns.data and ns.data != cfg.data.name:
            raise ValueError(f"{ns.target} was trained on {cfg.data.name!r}; --data {ns.data!r} does not apply")
        info = {"model": cfg.model.name, "data": cfg.data.name, "run_dir": ns.target, "weights": "trained",
                "unit": "sequence" if getattr(dataset, "kind", "array") == "tokens" else "image"}
        return model, _run_batch(cfg, dataset, ns.batch), info, ns.target

    kw = parse_overrides(ns.overrides)
    if ns.data and model_info(ns.target).get("family") == "lm":
        raise ValueError(f"{ns.target} reads token ids; --data {ns.data!r} holds images")
    torch.manual_seed(ns.seed)
    dataset = None
    if ns.data:
        dataset = create_dataset(ns.data)
        kw = {**dataset.model_kwargs(), **kw}  # input shape and classes (images, event frames or sequences)
    need = footprint.weight_bytes(footprint.meta_model(ns.target, kw))  # sizes checked before allocating
    free = footprint.fits(need, torch.device("cpu"))
    if free is not None:
        raise ValueError(f"{ns.target} with {kw} holds {footprint.gigabytes(need)} of weights, more than the "
                         f"{footprint.gigabytes(free)} of memory available: lower its size options")
    model = create_model(ns.target, **kw).to(device)
    c, gen = model.cfg, torch.Generator(device=device).manual_seed(ns.seed)
    if hasattr(c, "vocab_size"):  # a language model reads token ids
        n = min(ns.seq_len, c.block_size)
        x = torch.randint(0, c.vocab_size, (ns.batch, n), device=device, generator=gen)
    elif dataset is not None:
        x = _first_batch(dataset, ns.batch, device)
    elif hasattr(c, "seq_len"):  # a sequence model reads [B, L, F]
        x = torch.rand(ns.batch, c.seq_len, c.in_features, device=device, generator=gen)
    else:
        x = torch.rand(ns.batch, c.in_chans, c.img_size, c.img_size, device=device, generator=gen)
    data = ns.data or ("random-token" if hasattr(c, "vocab_size") else "noise")
    info = {"model": ns.target, "options": kw, "data": data, "weights": "untrained", "seed": ns.seed,
            "unit": "sequence" if hasattr(c, "vocab_size") else "image"}
    return model, x, info, os.path.join("runs", f"energy_{ns.target}_{data}")


def run_energy_command(ns) -> int:

    model, x, info, default_out = _load(ns)
    costs = LemaireCosts(weight_bits=ns.weight_bits, memory=ns.memory)
    rep = energy_report(model, x, model_energy=ns.model_energy, preset=ns.preset, multi_spike_max=ns.multi_spike_max,
                        first_layer_times_T=ns.first_layer_times_T, costs=costs, info=info)
    c = rep.counts
    rep.info["batch"] = c.batch_size
    if info.get("run_dir"):
        rep.info["sample"] = f"first {c.batch_size} test {info.get('unit', 'image')}s"
    rules = (f"{'strict binary' if c.rules.multi_spike_max == 1 else f'multi-spike <= {c.rules.multi_spike_max}'}, "
             f"first layer {_first_layer_rule(c)}")
    unit = info.get("unit", "image")
    print(f"{info['model']} ({count_parameters(model) / 1e6:.3f} M parameters, {info['weights']} weights) on "
          f"{c.batch_size} {info['data']} {unit}s; T={c.T}; {rules}. Per {unit}:")
    print(rep.table())
    h = rep.headline()
    print(f"dense ops {format_count(c.total_ops)}, {format_count(c.total_ac)} AC + {format_count(c.total_mac)} MAC, "
          f"{format_count(c.neuron_updates)} neuron updates")
    print(h["text"])
    js, png = rep.write(ns.out or default_out)
    print(f"results: {js}, {png}")
    return 0


def _first_layer_rule(c) -> str:
    first = next((l for l in c.layers if l.analog_first), None)
    if first is None:
        return "spiking (no analog layer)"
    once = first.steps < c.T
    why = "flag" if c.rules.first_layer_times_T is not None else (
        "its input repeats over T" if c.first_input_repeated else "its input changes over T")
    return f"x{'1' if once else 'T'} ({why})"
