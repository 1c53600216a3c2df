"""The `spikeformers` command.

    spikeformers train [CONFIG.yaml] [key=value ...]   train (no arguments: the embedded digits default)
    spikeformers train resume=runs/NAME [run.key=value] continue a stopped run (epochs=N: to N epochs)
    spikeformers eval RUN_DIR                          evaluate a run's checkpoint on its test set
    spikeformers generate RUN_DIR --prompt TEXT        continue a prompt with a trained language model
    spikeformers export RUN_DIR --format onnx|hub      ONNX inference graph / Hugging Face Hub folder
    spikeformers convert SRC.pth DST_DIR --from SOURCE official Spikformer/SDT/QKFormer/SJ weights -> ours
    spikeformers to-snn RUN_DIR --T 4 8 16 32          a QANN run (twin=qann_sa) as equivalent SNN runs
    spikeformers predict RUN_DIR FILES... [--top-k K]  top-k classes of images / .npy arrays (--text: LMs)
    spikeformers energy MODEL|RUN_DIR [options]        synaptic operations and energy vs the ANN twin
    spikeformers models [PATTERN]                      registered models, parameters, published accuracy
    spikeformers config [CONFIG.yaml] [key=value ...]  the resolved config, as YAML (a recipe again)
    spikeformers suite SUITE.yaml [--launcher ray]      a benchmark suite: runs x seeds x twins, leaderboard
    spikeformers suite report DIR                      the leaderboard of a suite folder
    spikeformers bench NAME                            speed benchmarks against SpikingJelly (GPU)
    spikeformers info                                  versions, device, kernels, datasets

Errors caused by input (bad config keys, unknown names, missing files, corrupt checkpoints) print one
line and exit with status 2; so does running out of memory, naming the setting to lower.

Each command imports what it runs when it runs (function-level imports: `spikeformers --help` and a
typo's error come back without importing torch's model zoo); `energy.py` holds the `energy` command.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

__all__ = ["main", "build_parser", "parse_args"]


def _split_train_args(args: List[str]):
    path, overrides, resume = None, [], None
    for a in args:
        if "=" not in a:
            if path is not None:
                raise ValueError(f"unexpected argument {a!r}: give one CONFIG.yaml and key=value overrides")
            path = a
        elif a.split("=", 1)[0] in ("resume", "run.resume"):
            resume = a.split("=", 1)[1]
            if not resume.strip():
                raise ValueError("resume= needs a run directory, e.g. resume=runs/NAME")
        else:
            overrides.append(a)
    return path, overrides, resume


def cmd_train(ns) -> int:
    from ..train.config import load_config
    from ..train.engine import train

    path, overrides, resume = _split_train_args(ns.args)
    if resume:
        if path:
            raise ValueError("resume continues a run with its own config: give no CONFIG.yaml")
        summary = train(None, progress=not ns.quiet, resume=resume, overrides=tuple(overrides))
    else:
        summary = train(load_config(path, overrides), progress=not ns.quiet)
    from ..train.distributed import is_main_process

    if summary.get("finished") and is_main_process():  # under torchrun, one report, from rank 0
        print(format_summary(summary))
    return 0


def _task(name: str):
    from ..tasks import create_task

    return create_task(name or "classify", None)


def format_summary(s) -> str:
    lines = [
        _task(s.get("task")).headline(s),
        f"mean firing rate {100 * s['mean_firing_rate']:.2f}% over {len(s['firing_rates'])} spiking layers:",
    ]
    width = max((len(n) for n in s["firing_rates"]), default=0)
    lines += [f"  {n:<{width}}  {100 * r:6.2f}%" for n, r in s["firing_rates"].items()]
    e = s.get("energy")
    if e:
        lines.append(e.get("text", ""))
    lines.append(f"results: {os.path.join(s['run_dir'], 'summary.json')}")
    return "\n".join(lines)


def cmd_config(ns) -> int:
    """Print the resolved config of a recipe plus overrides, as YAML (usable as a recipe again)."""
    import yaml

    from ..train.config import config_to_dict, load_config

    path, overrides, resume = _split_train_args(ns.args)
    if resume:
        raise ValueError("config resolves a recipe; for a run's config read RUN/config.yaml")
    print(yaml.safe_dump(config_to_dict(load_config(path, overrides)), sort_keys=False).rstrip())
    return 0


def cmd_eval(ns) -> int:
    from ..train.evaluate import evaluate_run

    res = evaluate_run(ns.run_dir, progress=not ns.quiet)
    print(f"{_task(res['task']).eval_line(res)}, mean firing rate {100 * res['mean_firing_rate']:.2f}%"
          + (f"  ->  {res['path']}" if res["path"] else ""))
    if res["energy"].get("text"):
        print(res["energy"]["text"])
    if res.get("write_error"):
        print(f"spikeformers eval: note: {res['write_error']}", file=sys.stderr)
    return 0


def cmd_predict(ns) -> int:
    from ..train.predict import predict_files

    res = predict_files(ns.run_dir, ns.files, ns.text, ns.top_k, ns.value_range, ns.device, ns.out)
    for row in res["predictions"]:
        top = ", ".join((f"{t['token']!r}" if "token" in t else f"class {t['class']}") + f" {t['prob']:.3f}"
                        for t in row["top"])
        print(f"{row['input']}: {top}")
    if res["path"]:
        print(f"-> {res['path']}", file=sys.stderr)
    else:
        print(f"spikeformers predict: note: {res['write_error']}", file=sys.stderr)
    return 0


def cmd_convert(ns) -> int:
    from ..models.hub import convert_file
    from .energy import parse_overrides

    if ns.options and not ns.model:
        raise ValueError("model options need --model NAME")
    r = convert_file(ns.src, ns.dst, ns.source, ns.model, parse_overrides(ns.options) if ns.model else None)
    print(f"{ns.src} ({r['source']} names, {r['tensors']} tensors) -> {r['model']} "
          f"{r['options']} in {r['path']} (spikeformers.from_pretrained loads it)")
    return 0


def cmd_to_snn(ns) -> int:
    from ..to_snn import to_snn

    rec = to_snn(ns.run_dir, ns.T, ns.out, signed=not ns.unsigned, device=ns.device,
                 say=(lambda *_: None) if ns.quiet else print)
    print(f"-> {rec['path']}" + (f", {rec['plot']}" if rec.get("plot") else ""))
    return 0


def cmd_export(ns) -> int:
    from ..export import export_run

    res = export_run(ns.run_dir, ns.format, ns.out, ns.spikes)
    if ns.format == "onnx":
        print(f"{res['path']}: input {res['input']['dtype']} {res['input']['shape']}, outputs "
              f"{', '.join(res['outputs'][:3])}{', ...' if len(res['outputs']) > 3 else ''} (opset {res['opset']})")
    else:
        print(f"{res['path']}: config.json + model.safetensors (spikeformers.from_pretrained loads it)")
    return 0


def cmd_generate(ns) -> int:
    from ..train.generate import generate_from_run

    r = generate_from_run(ns.run_dir, ns.prompt, ns.max_new_tokens, ns.temperature, ns.top_k, ns.seed, ns.device)
    print(f"-- {r['tokens']} tokens in {r['seconds']:.2f} s ({r['tokens_per_s']:.1f} tokens/s on {r['device']}, "
          f"through step(), prompt of {len(ns.prompt)} characters included in the state)", file=sys.stderr)
    return 0


def cmd_suite(ns) -> int:
    from ..suite import report_suite, run_suite

    if ns.target == "report":
        if not ns.folder:
            raise ValueError("usage: spikeformers suite report DIR [--suite SUITE.yaml]")
        board = report_suite(ns.folder, ns.suite)
    else:
        if ns.folder:
            raise ValueError(f"unexpected argument {ns.folder!r}: give one SUITE.yaml (or: suite report DIR)")
        res = run_suite(ns.target, out=ns.out, launcher=ns.launcher, jobs=ns.jobs, threads=ns.threads,
                        progress=not ns.quiet, ray_address=ns.ray_address)
        board = res["leaderboard"]
    if board:
        print(open(board["paths"]["md"], encoding="utf-8").read().rstrip())
        print(f"leaderboard: {', '.join(board['paths'].values())}" + (f"; plots: {', '.join(board['plots'].values())}"
                                                                      if board.get("plots") else ""))
    if ns.target != "report" and res["failed"]:  # the runs that failed, and where their output is
        print(f"spikeformers suite: {len(res['failed'])} of {len(res['cells'])} runs failed: "
              f"{', '.join(res['failed'])} (logs: {os.path.join(res['folder'], '.logs')})", file=sys.stderr)
        return 1
    return 0


def cmd_models(ns) -> int:
    """One row per registered model: built on the meta device (no memory, instant), so the parameter
    count is the layout's own, next to the paper's."""
    from ..models import count_parameters, create_model, list_models, model_info

    names = list_models(ns.pattern)
    if not names:
        raise ValueError(f"no model matches {ns.pattern!r}")
    rows = [("model", "family", "params (M)", "paper (M)", "attention", "published", "source")]
    for n in names:
        meta = model_info(n)
        pub = meta.get("published") or {}
        with _meta_device():
            m = create_model(n)
        attn = _attentions(getattr(getattr(m, "backbone", m), "cfg", None))  # a dense model: its backbone's
        acc = f"{pub['top1']:.2f}% {pub['dataset']}" if pub else meta.get("note", "-")
        if pub.get("note"):
            acc += f" ({pub['note']})"
        paper = f"{pub['params_m']:.2f}" if pub.get("params_m") else "-"
        params = f"{count_parameters(m) / 1e6:.3f}"
        rows.append((n, meta.get("family", "-"), params, paper, attn or "-", acc, pub.get("source", "")))
    print(_table(rows))
    return 0


def _attentions(cfg) -> str:
    """Every attention field of a config in declaration order: QKFormer shows "qk_token+ssa" (stages 1-2 + 3)."""
    from dataclasses import fields, is_dataclass

    if not is_dataclass(cfg):
        return "-"
    return "+".join(getattr(cfg, f.name) for f in fields(cfg)
                    if (f.name == "attention" or f.name.endswith("_attention")) and getattr(cfg, f.name))


def _meta_device():
    import torch

    return torch.device("meta")


def _table(rows) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = []
    for j, r in enumerate(rows):
        out.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def cmd_info(ns) -> int:
    import platform

    import numpy
    import torch

    from ..attention import list_attentions
    from ..encoding import list_encoders
    from ..models import list_models
    from ..neurons import list_neurons, list_surrogates
    from ..version import __version__
    from ..data import list_datasets
    from ..kernels import kernel_status

    print(f"spikeformers {__version__}  torch {torch.__version__}  numpy {numpy.__version__}  "
          f"python {platform.python_version()}")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            print(f"device cuda:{i}: {torch.cuda.get_device_name(i)}")
    else:
        print(f"device: cpu only ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)")
    print(f"kernels: {kernel_status()}")
    print(f"models ({len(list_models())}): {', '.join(list_models())}")
    print(f"attention: {', '.join(list_attentions())}")
    print(f"neurons: {', '.join(list_neurons())}; surrogates: {', '.join(list_surrogates())}")
    print(f"encoders: {', '.join(list_encoders())}; datasets: {', '.join(list_datasets())}")
    return 0


def cmd_energy(ns) -> int:
    from .energy import run_energy_command

    return run_energy_command(ns)


def cmd_bench(ns) -> int:
    from ..speed import run_benchmark

    return run_benchmark(ns.suite, ns.args)


def build_parser() -> argparse.ArgumentParser:
    from ..version import __version__

    p = argparse.ArgumentParser(prog="spikeformers", description="Spiking transformers: train, measure, compare.")
    p.add_argument("--version", action="version", version=f"spikeformers {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    from ..train.config import config_help

    t = sub.add_parser("train", help="train a model (no arguments: the embedded digits default)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="config keys (set as key=value, or in a recipe's sections):\n" + config_help())
    t.add_argument("args", nargs="*", help="[CONFIG.yaml] [key=value ...], or resume=RUN_DIR [run.key=value ...]")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar or per-epoch lines")
    t.set_defaults(fn=cmd_train)
    c = sub.add_parser("config", help="print the resolved config of [RECIPE] [key=value ...] without running it")
    c.add_argument("args", nargs="*", help="[CONFIG.yaml] [key=value ...]")
    c.set_defaults(fn=cmd_config)
    e = sub.add_parser("eval", help="evaluate a run directory's checkpoint on its test set")
    e.add_argument("run_dir")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(fn=cmd_eval)
    cv = sub.add_parser("convert", help="official Spikformer / SDT / QKFormer / SpikingJelly weights as one of our models (a Hub folder)")
    cv.add_argument("src", help="the official checkpoint file (.pth / .pth.tar)")
    cv.add_argument("dst", help="output folder (config.json + model.safetensors)")
    cv.add_argument("--from", dest="source", default=None, choices=("spikformer", "sdt", "qkformer", "spikingjelly"),
                    help="the code that wrote SRC (default: told by its parameter names)")
    cv.add_argument("--model", default=None, help="our model (default: the registered Spikformer that fits)")
    cv.add_argument("options", nargs="*", metavar="key=value", help="options of --model (num_classes=10 ...)")
    cv.set_defaults(fn=cmd_convert, trailing_options="options")
    ts = sub.add_parser("to-snn", help="a QANN run (model.twin=qann_sa) as its equivalent spiking network, one run per T")
    ts.add_argument("run_dir")
    ts.add_argument("--T", type=int, nargs="+", required=True, help="time steps, one run folder each (e.g. --T 4 8 16 32)")
    ts.add_argument("--out", default=None, help="folder of the run folders (default: next to RUN_DIR)")
    ts.add_argument("--unsigned", action="store_true", help="QCFS IF neurons (no negative spikes) instead of ST-BIF")
    ts.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda")
    ts.add_argument("-q", "--quiet", action="store_true")
    ts.set_defaults(fn=cmd_to_snn)
    x = sub.add_parser("export", help="a trained run as ONNX (input transform included) or as a Hub folder")
    x.add_argument("run_dir")
    x.add_argument("--format", default="onnx", choices=("onnx", "hub"))
    x.add_argument("--out", default=None, help="file (onnx) or folder (hub); default inside RUN_DIR")
    x.add_argument("--spikes", action="store_true", help="onnx: add every spiking layer's output to the outputs")
    x.set_defaults(fn=cmd_export)
    pr = sub.add_parser("predict", help="top-k classes of image files or .npy arrays (--text: an LM's next byte)")
    pr.add_argument("run_dir")
    pr.add_argument("files", nargs="*", help="images (.png, .jpg, ...: converted and resized to the run's input), "
                                             ".npy arrays (one sample or a batch), or text files for an LM")
    pr.add_argument("--text", default=None, help="text whose next token a language-model run predicts")
    pr.add_argument("--top-k", type=int, default=5, help="classes (tokens) to list per input (default 5)")
    pr.add_argument("--value-range", default="auto", choices=("auto", "0-1", "0-255"),
                    help="float pixels: auto reads them as 0-255 when any exceeds 1 (uint8 is always 0-255)")
    pr.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda")
    pr.add_argument("--out", default=None, help="JSON file to write (default RUN_DIR/predictions.json)")
    pr.set_defaults(fn=cmd_predict)
    g = sub.add_parser("generate", help="continue a prompt with a trained language model (streams the text)")
    g.add_argument("run_dir")
    g.add_argument("--prompt", required=True, help="text to continue")
    g.add_argument("--max-new-tokens", type=int, default=200, help="tokens to generate (default 200)")
    g.add_argument("--temperature", type=float, default=0.8, help="sampling temperature; 0 is greedy (default 0.8)")
    g.add_argument("--top-k", type=int, default=None, help="sample among the k likeliest tokens only")
    g.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    g.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda")
    g.set_defaults(fn=cmd_generate)
    su = sub.add_parser("suite", help="run a benchmark suite (runs, seeds, twins) and write its leaderboard")
    su.add_argument("target", help="SUITE.yaml, or 'report' followed by a suite folder")
    su.add_argument("folder", nargs="?", help="with 'report': the suite folder (its run directories)")
    su.add_argument("--out", help="suite folder (default runs/<suite name>)")
    su.add_argument("--launcher", default="local", choices=["local", "ray", "slurm"],
                    help="local: this machine's GPUs or CPU slots (default); ray: a Ray cluster; slurm: submitit")
    su.add_argument("--jobs", type=int, help="runs at a time (local; default: one per GPU, else CPU cores / threads)")
    su.add_argument("--threads", type=int, help="CPU threads per run (default: the suite's launcher.threads, else 1)")
    su.add_argument("--ray-address", help="Ray cluster address (default: RAY_ADDRESS or a local runtime)")
    su.add_argument("--suite", help="with 'report': the suite file, for its expected ranges")
    su.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    su.set_defaults(fn=cmd_suite)
    m = sub.add_parser("models", help="list registered models")
    m.add_argument("pattern", nargs="?", default="*")
    m.set_defaults(fn=cmd_models)
    i = sub.add_parser("info", help="versions, device, kernels, datasets")
    i.set_defaults(fn=cmd_info)
    from ..speed import add_bench_arguments
    from .energy import add_energy_arguments

    en = sub.add_parser("energy", help="operation counts and energy estimate of a model or run")
    add_energy_arguments(en)
    en.set_defaults(fn=cmd_energy, trailing_options="overrides")
    b = sub.add_parser("bench", help="speed benchmarks against SpikingJelly (GPU)")
    add_bench_arguments(b)
    b.set_defaults(fn=cmd_bench)
    return p


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The parsed command line. A command whose `key=value` options may also follow its flags (convert:
    `SRC DST --from X --model M dim=384`, as argparse alone refuses) gets them appended; anything else left
    over is refused as argparse would."""
    parser = build_parser()
    ns, extra = parser.parse_known_args(argv)
    into = getattr(ns, "trailing_options", None)
    if extra and into and all("=" in a and not a.startswith("-") for a in extra):
        setattr(ns, into, list(getattr(ns, into) or []) + extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return ns


#: what to lower when a command runs out of memory
_MEMORY_ADVICE = {
    "train": "lower data.batch_size or model.T (or the model's size), or set run.memory=recompute",
    "eval": "lower data.eval_batch_size in the run's config.yaml, or evaluate on another device (--device)",
    "predict": "give fewer samples per .npy file, or use --device cpu",
    "generate": "lower --max-new-tokens, or use --device cpu",
    "energy": "lower --batch or the model's size",
    "suite": "lower the suite's data.batch_size or model.T, or --jobs",
}


def _out_of_memory(e: BaseException) -> bool:
    """torch's out-of-memory errors: OutOfMemoryError (CUDA), MemoryError, and the CPU allocator's RuntimeError."""
    import torch

    text = str(e)
    return isinstance(e, (torch.OutOfMemoryError, MemoryError)) or (
        isinstance(e, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower()))


def main(argv: Optional[List[str]] = None) -> int:
    from ..errors import SpikeformersError

    ns = parse_args(argv)
    try:
        try:
            return ns.fn(ns)
        except (MemoryError, RuntimeError) as e:
            if not _out_of_memory(e):
                raise
            detail = " ".join(str(e).split())[:200]
            advice = _MEMORY_ADVICE.get(ns.command, "use smaller inputs or another device")
            print(f"spikeformers {ns.command}: error: out of memory{f' ({detail})' if detail else ''}: {advice}",
                  file=sys.stderr)
            return 2
    except BrokenPipeError:  # `spikeformers info | head -1`: the reader left; say nothing more
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError:
            pass
        return 0
    except (SpikeformersError, ValueError, FileNotFoundError) as e:
        print(f"spikeformers {ns.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # read-only or full disk, a file where a folder should be, permissions
        print(f"spikeformers {ns.command}: error: {_os_error(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spikeformers {ns.command}: interrupted", file=sys.stderr)
        return 130


def _os_error(e: OSError) -> str:
    """One line: what failed, on which path, and what to do."""
    import errno

    hint = {errno.ENOSPC: "the disk is full: free space or point run.out_dir elsewhere",
            errno.EROFS: "the file system is read-only: point run.out_dir at a writable folder",
            errno.EACCES: "no permission: point run.out_dir at a folder you can write",
            errno.ENOTDIR: "a file stands where a folder is needed: point run.out_dir at a folder",
            errno.EISDIR: "a folder stands where a file is needed"}.get(e.errno, "")
    path = f" ({e.filename})" if e.filename else ""
    return f"{e.strerror or type(e).__name__}{path}" + (f"; {hint}" if hint else "")


if __name__ == "__main__":
    sys.exit(main())
