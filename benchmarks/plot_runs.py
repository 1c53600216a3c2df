"""One metric of several runs against training minutes (and epochs), from their metrics.jsonl records.

    python benchmarks/plot_runs.py --metric test_miou --out bench_out/curves.png \
        "I-LIF, T = 1=runs/seg_snn/run/metrics.jsonl" "ANN twin=runs/seg_ann/run/metrics.jsonl"

Each run is LABEL=PATH (or PATH, labelled by its file name). The x axis is the records' `elapsed_s`
(training time, evaluation excluded) in minutes; a second panel plots the same values by epoch.
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path: str, metric: str):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    rows = [r for r in rows if metric in r]
    if not rows:
        sys.exit(f"plot_runs: {path} has no record with {metric!r}")
    return [r.get("elapsed_s", 0.0) / 60 for r in rows], [r["epoch"] for r in rows], [r[metric] for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="LABEL=PATH of a metrics.jsonl")
    ap.add_argument("--metric", default="test_miou")
    ap.add_argument("--out", required=True)
    ap.add_argument("--target", type=float, help="a horizontal line at this value")
    args = ap.parse_args()
    fig, (by_time, by_epoch) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for run in args.runs:
        label, _, path = run.rpartition("=")
        minutes, epochs, values = load(path, args.metric)
        label = label or os.path.basename(path)
        by_time.plot(minutes, values, lw=1, label=f"{label} (end {values[-1]:.3f})")
        by_epoch.plot(epochs, values, lw=1, label=label)
    for ax, xlabel in ((by_time, "training minutes"), (by_epoch, "epoch")):
        if args.target is not None:
            ax.axhline(args.target, color="grey", ls="--", lw=0.8)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    by_time.set_ylabel(args.metric)
    by_time.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
