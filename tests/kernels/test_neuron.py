"""Fused Triton neuron kernels == the PyTorch reference: spikes exactly, gradients within tolerance.

On the CPU the kernels run in Triton's interpreter (switched on by this folder's conftest.py before any
kernel is defined), where the `interp` cases below run. The `gpu` cases run the compiled kernels on CUDA
over a wider grid of shapes and options.
"""
from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest
import torch

from spikeformers.neurons import create_neuron
from spikeformers.kernels import interpreting, kernel_status, triton_available

from marks import in_interpreter  # noqa: E402  (tests/kernels/marks.py)

needs_triton = pytest.mark.skipif(not triton_available(), reason="triton is not installed")

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(os.path.dirname(HERE)), "src")
SURROGATES = {"sigmoid": 3.0, "atan": 2.5, "triangle": 0.8, "rectangle": 0.7, "ste": None}

gpu = [pytest.mark.gpu, pytest.mark.skipif(not (torch.cuda.is_available() and triton_available()),
                                           reason="needs CUDA and triton")]


LAYOUTS = {
    None: lambda x: x,
    "channels_last": lambda x: x.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, (x.shape[0], -1)),
    "transposed": lambda x: x.transpose(-1, -2),  # dense, time outermost
    "time_inner": lambda x: x.movedim(0, -1).contiguous().movedim(-1, 0),  # dense, but time fastest in memory
    "expanded": lambda x: x[:, :1].expand(x.shape),  # not dense
}


def make_pair(name, **opts):
    """(reference neuron, kernel neuron) with the same options and parameters."""
    ref = create_neuron(name, backend="torch", **opts)
    ker = create_neuron(name, backend="triton", **opts)
    ker.load_state_dict(ref.state_dict())
    for b_ref, b_ker in zip(ref.buffers(), ker.buffers()):
        b_ker.copy_(b_ref)
    return ref, ker


def check(name, opts, T, cols, dtype=torch.float32, device="cpu", scale=1.5, seed=0, layout=None, compile_op=False):
    """Forward spikes equal, input (and parameter) gradients close, for one neuron configuration."""
    gen = torch.Generator().manual_seed(seed)
    ref, ker = (m.to(device) for m in make_pair(name, **opts))
    x = (torch.randn(T, *cols, generator=gen) * scale + 0.4).to(device=device, dtype=dtype)
    x_ref = x.detach().clone().requires_grad_()
    x_ker = x.detach().clone().requires_grad_()
    fwd = torch.compile(ker, backend="aot_eager", fullgraph=True) if compile_op else ker
    y_ref, y_ker = ref(LAYOUTS[layout](x_ref)), fwd(LAYOUTS[layout](x_ker))
    assert y_ker.dtype == dtype and y_ker.shape == y_ref.shape
    if layout is not None:  # the output is laid out as torch.empty_like(input) (what torch.compile expects)
        assert y_ker.stride() == torch.empty_like(LAYOUTS[layout](x_ker)).stride()
    assert torch.equal(y_ref, y_ker), f"spikes differ in {(y_ref != y_ker).sum().item()} of {y_ref.numel()}"
    g = torch.randn(y_ref.shape, generator=gen).to(device=device, dtype=dtype)
    (y_ref.float() * g.float()).sum().backward()
    (y_ker.float() * g.float()).sum().backward()
    # fp32: the kernel sums a gradient's terms over T in another order than autograd; through the reset
    # path (detach_reset=False) a small gradient can differ by a few ulps of its largest term (seen on an
    # H100: 8 of 218,400 elements off by 1.5e-6, gradients of order 1)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else {}
    torch.testing.assert_close(x_ker.grad, x_ref.grad, **tol)
    for (n, p_ref), (_, p_ker) in zip(ref.named_parameters(), ker.named_parameters()):
        torch.testing.assert_close(p_ker.grad, p_ref.grad, rtol=1e-4, atol=1e-4 * float(x_ref.grad.abs().sum()) / x.numel() ** 0.5,
                                   msg=lambda m: f"gradient of {n}: {m}")
    return y_ref


# ------------------------------------------------------------------------------ interpreter cases
def interp_cases():
    """A covering set: every LIF-family neuron x surrogate, with detach/reset/T/dtype/decay_input cycled so each
    neuron sees both values of each option; T = 11 crosses a chunk boundary (chunk 8, checkpoint)."""
    cases = []
    Ts = (1, 4, 8, 11)
    i = 0
    for name in ("if", "lif", "plif"):
        for surrogate, alpha in SURROGATES.items():
            opts = dict(surrogate=surrogate, detach_reset=bool(i % 2), v_reset=None if (i // 2) % 2 else 0.0)
            if alpha is not None:
                opts["alpha"] = alpha
            if name != "if":
                opts["decay_input"] = (i // 3) % 2 == 0
            if name == "lif" and i % 3 == 0:
                opts["tau"] = 3.0
            dtype = torch.bfloat16 if i % 4 == 3 else torch.float32
            cases.append((name, opts, Ts[i % 4], dtype))
            i += 1
    cases += [
        ("lif", dict(v_reset=-0.2, v_threshold=0.7), 11, torch.float16),
        ("ternary", dict(), 11, torch.float32),
        ("ternary", dict(detach_reset=False, decay=0.4, v_threshold=1.3, amplitude=0.7, learnable_amplitude=True), 8, torch.float32),
        ("ternary", dict(detach_reset=False, amplitude=0.75, learnable_amplitude=True), 11, torch.bfloat16),
        ("ternary", dict(decay=0.0), 1, torch.float32),
        ("ternary", dict(learnable_amplitude=True, amplitude=0.75), 4, torch.bfloat16),
        ("asn", dict(), 11, torch.float32),
        ("asn", dict(channels=50, detach_reset=False, surrogate="atan", delta_theta=0.3), 11, torch.float32),
        ("asn", dict(v_reset=None, detach_reset=False, learnable=False, surrogate="triangle", alpha=0.8), 8, torch.float32),
        ("asn", dict(channels=50, v_reset=None, tau_a=6.0), 4, torch.bfloat16),
    ]
    return cases


@pytest.fixture
def small_blocks():
    """Tiny programs so the interpreter's small inputs still span several programs and a ragged edge."""
    from spikeformers.kernels import neuron as ops

    saved = dict(ops.CONFIG)
    ops.CONFIG.update(block=128, block_bwd=64)
    yield
    ops.CONFIG.update(saved)


@in_interpreter
@pytest.mark.parametrize("name,opts,T,dtype", interp_cases() if interpreting() else [], ids=lambda v: str(v).replace(" ", ""))
def test_interp_kernel_equals_reference(small_blocks, name, opts, T, dtype):
    y = check(name, opts, T, (3, 50), dtype=dtype, seed=T)
    if name != "ternary" and T > 1:
        assert 0.05 < y.float().mean() < 0.95  # both firing and silence were exercised


@in_interpreter
@pytest.mark.parametrize("layout", ["channels_last", "transposed", "time_inner", "expanded"])
def test_interp_layouts(small_blocks, layout):
    cols = (2, 3, 5, 4) if layout == "channels_last" else (3, 40)
    check("lif", dict(detach_reset=False), 5, cols, layout=layout, scale=3.0)


@in_interpreter
@pytest.mark.parametrize("name,opts", [("plif", dict(v_reset=None, detach_reset=False)),
                                       ("ternary", dict(learnable_amplitude=True, detach_reset=False)),
                                       ("asn", dict(channels=40, detach_reset=False))])
def test_interp_custom_op_under_compile(small_blocks, name, opts):
    """The custom-op path (what torch.compile sees): one graph, same numbers."""
    torch._dynamo.reset()
    check(name, opts, 11, (3, 40), compile_op=True)


@in_interpreter
def test_interp_no_grad_and_empty(small_blocks):
    ref, ker = make_pair("lif")
    x = torch.randn(4, 3, 70) * 2
    with torch.no_grad():
        assert torch.equal(ker(x), ref(x))
    assert ker(torch.randn(4, 0, 3)).shape == (4, 0, 3)
    y = ker(torch.randn(4, 7, requires_grad=True))
    assert y.grad_fn is not None


# ------------------------------------------------------------------------------ dispatch and import
def test_backend_triton_on_cpu_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)  # the interpreter would run the CPU tensor
    n = create_neuron("lif", backend="triton")
    with pytest.raises(RuntimeError, match="need a CUDA tensor.*TRITON_INTERPRET=1"):
        n(torch.randn(2, 5))


def test_auto_on_cpu_is_the_reference():
    x = torch.randn(4, 3, 10) * 2
    for name in ("if", "lif", "plif", "ternary"):
        assert create_neuron(name)._fused(x) is None
        assert torch.equal(create_neuron(name)(x), create_neuron(name, backend="torch")(x))


def test_import_touches_neither_triton_nor_cuda():
    code = ("import sys, torch, spikeformers as sf\n"
            "m = sf.create_model('spikformer_tiny'); m(torch.rand(2, 1, 8, 8)).sum().backward()\n"
            "print(sf.kernels.kernel_status())\n"
            "assert 'triton' not in sys.modules, 'triton imported'\n"
            "assert not torch.cuda.is_initialized(), 'CUDA initialised'\n")
    env = {**os.environ, "PYTHONPATH": SRC, "TRITON_INTERPRET": "0"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_kernel_status_line():
    s = kernel_status()
    assert isinstance(s, str) and ("triton" in s or "reference" in s)


# ------------------------------------------------------------------------------------------- GPU
def gpu_cases():
    """A covering grid (every combination would compile hundreds of variants: minutes of GPU time):
    each neuron kind x surrogate once, with T, detach, reset and dtype cycled, plus T = 1 and ternary."""
    kinds = [("if", {}), ("lif", {}), ("lif", dict(decay_input=False, tau=3.0)), ("plif", {}), ("plif", dict(decay_input=False))]
    cases = []
    for i, ((name, base), (surrogate, alpha)) in enumerate(itertools.product(kinds, SURROGATES.items())):
        opts = dict(base, surrogate=surrogate, detach_reset=bool(i % 2), v_reset=None if (i // 2) % 2 else 0.0)
        if alpha is not None:
            opts["alpha"] = alpha
        cases.append((name, opts, (4, 8, 16)[i % 3], torch.bfloat16 if (i // 3) % 2 else torch.float32))
    cases += [("lif", {}, 1, torch.float32), ("plif", dict(detach_reset=False), 1, torch.bfloat16)]
    for T, dtype in ((4, torch.float32), (16, torch.bfloat16), (1, torch.float32), (8, torch.bfloat16)):
        cases.append(("ternary", dict(detach_reset=T > 4, learnable_amplitude=True, amplitude=0.75), T, dtype))
    for i, (surrogate, alpha) in enumerate(SURROGATES.items()):  # asn: cols[-1] is 89 for per-channel cases
        opts = dict(surrogate=surrogate, detach_reset=bool(i % 2), v_reset=None if i % 3 == 1 else 0.0,
                    channels=89 if i % 2 else None)
        if alpha is not None:
            opts["alpha"] = alpha
        cases.append(("asn", opts, (4, 8, 16)[i % 3], torch.bfloat16 if i % 2 else torch.float32))
    return cases


@pytest.mark.parametrize("name,opts,T,dtype", gpu_cases(), ids=lambda v: str(v).replace(" ", ""))
@pytest.mark.gpu
@pytest.mark.skipif(not (torch.cuda.is_available() and triton_available()), reason="needs CUDA and triton")
def test_gpu_kernel_equals_reference(name, opts, T, dtype):
    gen = torch.Generator().manual_seed(T * 7919 + len(str(opts)))
    cols = tuple(int(v) for v in torch.randint(1, 90, (3,), generator=gen))  # ragged sizes: 1 .. ~700k columns
    if opts.get("channels"):
        cols = cols[:-1] + (opts["channels"],)
    check(name, opts, T, cols, dtype=dtype, device="cuda", seed=T)


@pytest.mark.gpu
@pytest.mark.skipif(not (torch.cuda.is_available() and triton_available()), reason="needs CUDA and triton")
@pytest.mark.parametrize("layout", ["channels_last", "transposed", "time_inner", "expanded"])
def test_gpu_layouts(layout):
    cols = (8, 16, 12, 12) if layout == "channels_last" else (64, 300)
    check("lif", {}, 4, cols, layout=layout, device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not (torch.cuda.is_available() and triton_available()), reason="needs CUDA and triton")
def test_gpu_big_and_compiled():
    check("lif", dict(detach_reset=False), 8, (1 << 20,), dtype=torch.bfloat16, device="cuda")
    torch._dynamo.reset()
    check("plif", {}, 16, (256, 513), device="cuda", compile_op=True)


@pytest.mark.gpu
@pytest.mark.skipif(not (torch.cuda.is_available() and triton_available()), reason="needs CUDA and triton")
def test_gpu_poisoned_outputs_are_overwritten():
    """Every output element is written: fill the allocator's free memory with NaN first."""
    junk = torch.full((1 << 24,), float("nan"), device="cuda")
    del junk  # the next allocations reuse this NaN-filled block
    ref, ker = make_pair("lif")
    ref, ker = ref.cuda(), ker.cuda()
    x = torch.randn(4, 1000, 37, device="cuda", requires_grad=True)
    y = ker(x)
    assert torch.equal(y, ref(x.detach()))
    y.backward(torch.ones_like(y))
    assert torch.isfinite(x.grad).all()


# ------------------------------------------------------------------------------------- direct launch
@needs_triton
def test_launch_key_is_at_least_as_fine_as_tritons_specialization():
    """launch.py reuses a compiled kernel for arguments with the same `spec`; that is only safe if Triton
    would have specialized them identically (its own function, run here on CPU values)."""
    from triton._C.libtriton import native_specialize_impl
    from triton.backends.compiler import BaseBackend

    from spikeformers.kernels.launch import spec

    base = torch.empty(64)
    values = [0, 1, 2, 15, 16, 17, 32, 48, -1, -16, 2**31 - 16, 2**31 - 1, 2**31, 2**40, -(2**31), -(2**31) - 1,
              0.0, 1.0, 1.5, True, False, base, base[1:], base[4:], base[2:], base.bfloat16(), base.bfloat16()[8:],
              base.half()[1:], torch.empty(3, dtype=torch.uint8)]
    triton_spec = lambda v: native_specialize_impl(BaseBackend, v, False, True, True)  # noqa: E731
    for a, b in itertools.combinations(values, 2):
        if spec(a) == spec(b):
            assert triton_spec(a) == triton_spec(b), (a, b)
    assert len({spec(v) for v in values}) > 10  # the key does tell values apart


@pytest.mark.gpu
@pytest.mark.skipif(not (torch.cuda.is_available() and triton_available()), reason="needs CUDA and triton")
def test_gpu_direct_launch_equals_tritons_launch():
    """The first call of a configuration goes through `kernel[grid]`, later ones call the cached compiled kernel:
    both give the reference's numbers, on aligned and misaligned (offset view) inputs."""
    from spikeformers.kernels import launch

    for offset in (0, 1):
        launch._CACHE.clear()
        for _ in range(3):
            check("plif", dict(detach_reset=False), 12, (7, 333 + offset), device="cuda", seed=offset)
        assert launch._CACHE, "nothing was cached: the direct path never ran"
        x = torch.randn(4 * 1001 + 1, device="cuda")[1:].view(4, 1001).requires_grad_()  # misaligned pointer
        ref, ker = (m.cuda() for m in make_pair("lif"))
        for _ in range(2):
            y = ker(x)
            assert torch.equal(y, ref(x.detach()))
    # a profiler's launch hook still sees every launch (those go through Triton's own path)
    from triton import knobs

    seen = []
    hook = lambda metadata: seen.append(metadata)  # noqa: E731
    knobs.runtime.launch_enter_hook.add(hook)
    try:
        create_neuron("lif").cuda()(torch.randn(4, 1001, device="cuda"))
    finally:
        knobs.runtime.launch_enter_hook.remove(hook)
    assert len(seen) == 1
