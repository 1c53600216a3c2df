"""Speed benchmarks (GPU), each one command that prints a ratio table against a named peer and writes a JSON
record. (Accuracy comparisons across configurations are suites: `suite/`.)

    spikeformers bench neuron [--out neuron.json]   fused LIF kernel vs SpikingJelly 2.0 / PyTorch / torch.compile
    spikeformers bench model  [--out model.json]    Spikformer-4-384 training step vs SpikingJelly's, same-loss check
    spikeformers bench ddp    [--gpus 1 2]          data-parallel images/s at equal global batch (launches torchrun)
    spikeformers bench lm     [--out lm.json]        spiking LM training tokens/s vs its ANN twin

`benchmarks/*.py` call the same code. Nothing here imports SpikingJelly or Triton until a benchmark runs.
"""
from __future__ import annotations

import argparse
import importlib
from typing import List, Sequence

__all__ = ["BENCHMARKS", "add_bench_arguments", "run_benchmark"]

BENCHMARKS = {
    "neuron": "multi-step LIF forward+backward: ours vs SpikingJelly 2.0, a PyTorch loop and torch.compile",
    "model": "Spikformer-4-384 training step vs SpikingJelly's spikformer_cifar10; same-loss check",
    "ddp": "images/s on 1 vs N GPUs at equal global batch (torchrun + DDP)",
    "lm": "spiking language model training tokens/s vs its ANN twin (IF T=4, LIF T=4, integer D=4)",
}


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", choices=sorted(BENCHMARKS), help="; ".join(f"{k}: {v}" for k, v in BENCHMARKS.items()))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the benchmark's own options (NAME --help lists them)")


def run_benchmark(name: str, args: Sequence[str]) -> int:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; valid benchmarks: {', '.join(sorted(BENCHMARKS))}")
    return importlib.import_module(f".{name}", __name__).main(list(args))
