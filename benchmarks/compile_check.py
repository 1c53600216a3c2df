"""Compile every neuron-kernel variant (and the BatchNorm + LIF and WKV kernels) for an H100 (sm_90) on a machine without a GPU, and report
registers, spills and the widest global loads/stores (ptxas -v), as benchmarks/NOTES.md quotes.

    python benchmarks/compile_check.py            # all variants, both block sizes in use
    python benchmarks/compile_check.py --quick    # one variant per kernel
    python benchmarks/compile_check.py --ptx DIR  # also write each variant's PTX, without debug lines, to DIR:
                                                  # `diff -r` two such folders to see whether a refactor changed code

Uses Triton's bundled ptxas; nothing runs. Arguments are specialised as the launcher does for
16-byte-aligned tensors and a column count N divisible by 16.
"""
import argparse
import itertools
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from spikeformers.kernels import bn_fire  # noqa: E402
from spikeformers.kernels import neuron as ops  # noqa: E402
from spikeformers.kernels.triton_asn import asn_bwd_kernel, asn_fwd_kernel  # noqa: E402
from spikeformers.kernels.triton_bn_fire import bn_lif_bwd_kernel, bn_lif_fwd_kernel  # noqa: E402
from spikeformers.kernels.triton_lif import lif_bwd_kernel, lif_fwd_kernel  # noqa: E402
from spikeformers.kernels.triton_ternary import ternary_bwd_kernel, ternary_fwd_kernel  # noqa: E402
from spikeformers.kernels.triton_wkv import wkv_bwd_kernel, wkv_fwd_kernel  # noqa: E402
from spikeformers.kernels.wkv import BLOCK_C as WKV_BLOCK_C, UNROLL as WKV_UNROLL  # noqa: E402

PTXAS = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas")
DATA = {"x_ptr", "y_ptr", "gy_ptr", "gx_ptr", "g_ptr", "k_ptr", "v_ptr", "gk_ptr", "gv_ptr"}  # in the input dtype; others fp32
INTS = {"N", "T", "n_chunks", "n_saved", "C_K", "R", "CH", "rows_per_prog", "C"}


def code_only(ptx: str) -> str:
    """The PTX without debug sections, line markers and comments (they change with every edit of the source)."""
    ptx = re.split(r"\.section\s+\.debug", ptx)[0]
    return "\n".join(l for l in ptx.splitlines() if l.strip() and not re.match(r"\s*(\.loc|\.file|//|\$L__)", l))


def compile_variant(fn, dtype: str, consts: dict, block, ptx_out: str = None):
    """`block`: the BLOCK constexpr, or None for the BN + LIF and WKV kernels (their tile is in `consts`)."""
    sig, attrs = {}, {}
    for i, p in enumerate(fn.params):
        name = p.name
        if p.is_constexpr:
            sig[name] = "constexpr"
        elif name.endswith("_ptr"):
            sig[name] = f"*{dtype}" if name in DATA else "*fp32"
            attrs[(i,)] = [["tt.divisibility", 16]]
        elif name in INTS:
            sig[name] = "i32"
            if name in ("N", "CH"):
                attrs[(i,)] = [["tt.divisibility", 16]]
        else:
            sig[name] = "fp32"
    warps = ops.CONFIG["num_warps"]
    if fn.__name__.startswith("wkv"):
        warps = 1  # kernels/wkv.py: one warp per program
    elif block is None:
        warps = bn_fire.CONFIG["fwd_warps" if "bwd" not in fn.__name__ else "bwd_warps"]
    else:
        consts = dict(consts, BLOCK=block)
    src = ASTSource(fn=fn, signature=sig, constexprs=consts, attrs=attrs)
    k = triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": warps, "enable_fp_fusion": False})
    ptx = k.asm["ptx"]
    if ptx_out:
        with open(ptx_out, "w") as f:
            f.write(code_only(ptx))
    with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
        f.write(ptx)
    out = subprocess.run([PTXAS, "-arch=sm_90a", "-v", f.name, "-o", os.devnull], capture_output=True, text=True)
    os.unlink(f.name)
    if out.returncode:
        raise RuntimeError(out.stderr)
    regs = int(re.search(r"Used (\d+) registers", out.stderr).group(1))
    spills = int(re.search(r"(\d+) bytes spill stores", out.stderr).group(1))
    widest = max((int(m) for m in re.findall(r"ld\.global\.v(\d)", ptx)), default=1)
    return regs, spills, widest


def variants(quick: bool):
    fwd, bwd = ops.CONFIG["block"], ops.CONFIG["block_bwd"]
    chunks = [4, 8] if not quick else [8]
    for dt, C in itertools.product(["fp32", "bf16"], chunks):
        for kind, kptr, soft in [(0, False, False), (1, False, False), (1, True, True), (2, True, False)][: 1 if quick else 4]:
            yield "lif_fwd", lif_fwd_kernel, dt, dict(KIND=kind, K_PTR=kptr, SOFT=soft, C=C), fwd
        combos = [(1, False, False, True, 0, False), (1, True, False, False, 1, True), (2, True, True, False, 2, True),
                  (0, False, True, True, 3, False), (0, False, False, False, 4, False)]
        for kind, kptr, soft, det, surr, gk in combos[: 2 if quick else 5]:
            yield "lif_bwd", lif_bwd_kernel, dt, dict(KIND=kind, K_PTR=kptr, SOFT=soft, DETACH=det, SURR=surr, NEED_GK=gk, C=C), bwd
        yield "ternary_fwd", ternary_fwd_kernel, dt, dict(C=C), fwd
        for det, ga in [(True, False), (False, True)]:
            yield "ternary_bwd", ternary_bwd_kernel, dt, dict(DETACH=det, NEED_GA=ga, C=C), bwd
        yield "asn_fwd", asn_fwd_kernel, dt, dict(SOFT=False, PER_CHANNEL=True, C=C), fwd
        for soft, det, surr, pc in [(False, True, 0, False), (True, False, 1, True)]:
            yield "asn_bwd", asn_bwd_kernel, dt, dict(SOFT=soft, DETACH=det, SURR=surr, PER_CHANNEL=pc, NEED_GK=True, C=C), bwd
        # BatchNorm + LIF (kernels/triton_bn_fire.py) at 64 channels, its tiles as kernels/bn_fire.py launches them
        tile = lambda way: dict(BLOCK_R=bn_fire.CONFIG[way + "_tile"] // 64, BLOCK_C=64)  # noqa: E731
        yield "bn_lif_fwd", bn_lif_fwd_kernel, dt, dict(KIND=1, SOFT=False, C=C, **tile("fwd")), None
        for soft, det, surr in [(False, True, 0), (True, False, 1)][: 1 if quick else 2]:
            yield "bn_lif_bwd", bn_lif_bwd_kernel, dt, dict(KIND=1, SOFT=soft, DETACH=det, SURR=surr, C=C, **tile("bwd")), None
    for dt in ["fp32", "bf16"]:  # the WKV recurrence (kernels/wkv.py)
        yield "wkv_fwd", wkv_fwd_kernel, dt, dict(SAVE=True, BLOCK_C=WKV_BLOCK_C, UNROLL=WKV_UNROLL), None
        yield "wkv_bwd", wkv_bwd_kernel, dt, dict(BLOCK_C=WKV_BLOCK_C, UNROLL=WKV_UNROLL), None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--ptx", metavar="DIR", help="write each variant's code-only PTX here")
    args = p.parse_args()
    if args.ptx:
        os.makedirs(args.ptx, exist_ok=True)
    worst = 0
    for name, fn, dt, consts, block in variants(args.quick):
        tag = "_".join([name, dt] + [f"{k}{v}" for k, v in consts.items()])
        regs, spills, widest = compile_variant(fn, dt, consts, block, args.ptx and os.path.join(args.ptx, tag + ".ptx"))
        worst = max(worst, spills)
        flags = " ".join(f"{k}={v}" for k, v in consts.items())
        print(f"{name:12s} {dt:5s} BLOCK={block or '-':<5} {flags:60s} regs {regs:3d}  spill {spills:4d} B  widest load v{widest}",
              flush=True)
    print("no spills" if worst == 0 else f"SPILLS: up to {worst} B")
    return 0 if worst == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
