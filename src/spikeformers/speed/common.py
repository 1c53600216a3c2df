"""Shared pieces of the GPU benchmarks: timing, the copy-bandwidth ceiling, provenance, JSON, tables."""
from __future__ import annotations

import datetime
import json
import os
import platform
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from ..train.run import provenance as run_provenance
from ..version import __version__

__all__ = ["DEVICE", "set_dry_run", "require_cuda", "sync", "peak_memory_gb", "reset_peak_memory", "time_ms",
           "graph_time_ms", "copy_bandwidth", "provenance", "write_record", "table", "fmt"]

#: where the suites run; `--dry-run` switches to the CPU with tiny sizes, to check the code paths
#: (numbers meaningless) on a machine without a GPU; `bench lm --cpu` measures there at the sizes given
DEVICE = torch.device("cuda")


def set_dry_run(on: bool) -> None:
    global DEVICE
    DEVICE = torch.device("cpu" if on else "cuda")


def require_cuda(suite: str) -> Optional[str]:
    """None when the suite can run (CUDA, or a dry run), else the message to print."""
    if DEVICE.type == "cpu" or torch.cuda.is_available():
        return None
    return f"spikeformers bench {suite}: needs a CUDA GPU (none found); nothing measured (--dry-run checks the code on the CPU)"


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def reset_peak_memory() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gb() -> Optional[float]:
    return torch.cuda.max_memory_allocated() / 1e9 if DEVICE.type == "cuda" else None


def time_ms(fn: Callable[[], Any], min_ms: float = 100.0, rounds: int = 5) -> Dict[str, float]:
    """Per-call time (ms) of `fn` run back to back: median, min and max over `rounds` rounds, each
    timed with CUDA events around enough calls to last `min_ms`.

    Back-to-back calls measure what a training loop sees: the GPU time when the GPU is the bottleneck,
    the host's launch time when it is not (a per-call flush of L2 between calls would hide the latter).
    Inputs that fit in L2 should be rotated by `fn` itself.
    """
    for _ in range(3):
        fn()
    sync()

    def timed(n: int) -> float:
        if DEVICE.type != "cuda":
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            return (time.perf_counter() - t0) * 1e3 / n
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(n):
            fn()
        b.record()
        b.synchronize()
        return a.elapsed_time(b) / n

    n = max(3, min(10000, int(min_ms / max(timed(5), 1e-3))))
    times = sorted(timed(n) for _ in range(rounds))
    return {"ms": times[len(times) // 2], "ms_min": times[0], "ms_max": times[-1], "calls": n}


def graph_time_ms(fn: Callable[[], Any], per_graph: int = 10) -> Optional[float]:
    """Median per-call time (ms) of `fn` captured `per_graph` times in one CUDA graph and replayed:
    the GPU time without launch gaps. None when `fn` cannot be captured."""
    if DEVICE.type != "cuda":
        return None
    try:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for _ in range(per_graph):
                fn()
        torch.cuda.synchronize()
        return time_ms(g.replay)["ms"] / per_graph
    except Exception as e:  # capture is best effort: some peers do host work inside
        print(f"  (CUDA graph capture failed: {type(e).__name__}: {str(e).splitlines()[0][:120]})")
        torch.cuda.synchronize()
        return None


def copy_bandwidth(nbytes: int = 1 << 30) -> float:
    """Device-to-device copy bandwidth in GB/s, counting bytes read plus bytes written."""
    if DEVICE.type != "cuda":
        nbytes = 1 << 24
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=DEVICE).uniform_()
    dst = torch.empty_like(src)
    ms = time_ms(lambda: dst.copy_(src), min_ms=200)["ms"]
    del src, dst
    if DEVICE.type == "cuda":
        torch.cuda.empty_cache()
    return 2 * nbytes / (ms * 1e-3) / 1e9


def provenance() -> Dict[str, Any]:
    run = run_provenance()
    out: Dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "commit": run["git_commit"], "commit_dirty": run["git_dirty"],
    }
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        out.update(device=p.name, capability=f"{p.major}.{p.minor}", sms=p.multi_processor_count,
                   memory_gib=round(p.total_memory / 2**30, 1), device_count=torch.cuda.device_count())
    from importlib import metadata

    for dist in ("triton", "spikingjelly"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None

    out["spikeformers"] = __version__
    return out


def write_record(path: Optional[str], record: Dict[str, Any], quiet: bool = False) -> None:
    """Write `record` as JSON, atomically (rewritten as rows arrive, so a killed run keeps its rows)."""
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1, default=str)
    os.replace(tmp, path)
    if not quiet:
        print(f"wrote {path}")


def fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def table(rows: Sequence[Sequence[Any]]) -> str:
    rows = [[fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for j, r in enumerate(rows):
        lines.append("  ".join(c.rjust(w) if j and i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def as_list(v) -> List:
    return list(v) if isinstance(v, (list, tuple)) else [v]
