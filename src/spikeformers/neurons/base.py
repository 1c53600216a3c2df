"""The neuron interface: a pure step (charge, fire, reset) and a multi-step forward over time.

Every neuron takes a whole time-first sequence `[T, ...]`, starts from its rest state and keeps no
state between calls (no `reset_net`). Streaming use passes the state explicitly:
`s_t, state = neuron.step(x_t, state)`.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from ..kernels import kernels_for, refuse  # imports no Triton until a kernel is about to run
from .surrogate import SURROGATES, Surrogate, create_surrogate

__all__ = ["Neuron", "SpikingNeuron", "DOMAINS", "check_time_first", "mark_binary", "is_binary", "spikes_as_bits", "PACK_SPIKES"]

# Output value domains that attention and energy counting read.
DOMAINS = ("binary", "ternary", "integer", "real")
BACKENDS = ("auto", "torch", "triton")
_LOW_PRECISION = (torch.float16, torch.bfloat16)


#: True: binary spike tensors are tagged, so the layers that save them for backward keep them as bits (less
#: memory, a few % slower: `run.memory=packed` and `recompute` turn it on for their run, `spikes_as_bits`)
PACK_SPIKES = False


@contextmanager
def spikes_as_bits(on: bool = True):
    """Within: binary spikes are saved for backward as bits (`PACK_SPIKES`); the previous setting is restored."""
    global PACK_SPIKES
    was, PACK_SPIKES = PACK_SPIKES, on
    try:
        yield
    finally:
        PACK_SPIKES = was


def mark_binary(x: Tensor) -> Tensor:
    """Tag `x` as binary spikes (values 0 and 1 only), so a layer that saves it for backward may store it as bits
    (`layers/spike_linear.py`); only while autograd records, and never under torch.compile (no Python state)."""
    if PACK_SPIKES and torch.is_grad_enabled() and x.requires_grad and not torch.compiler.is_compiling():
        x._binary_spikes = True
    return x


def is_binary(x: Tensor) -> bool:
    """Was `x` tagged by `mark_binary` (a neuron of the binary domain produced it)?"""
    return getattr(x, "_binary_spikes", False)


def check_time_first(x: Tensor, who: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{who} expects a tensor, got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"{who} expects a time-first tensor [T, ...] with at least 2 dims, got shape {tuple(x.shape)}")


class Neuron(nn.Module):
    """Base of all activation units that see time as their own axis.

    Subclasses set `domain` and implement `step`. `forward` runs `step` over T unless a fused kernel
    takes the whole sequence (see `_fused`). fp16/bf16 inputs are computed in fp32 and the output cast
    back to the input dtype, as the kernels do (a bf16 membrane potential would lose the input's
    low bits after a few steps).
    """

    domain: str = "real"
    #: the kernel module (`kernels/<op>.py`) that `_kernel` calls, or None: the class has no fused kernel
    kernel_op: Optional[str] = None
    backend: str = "torch"

    def step(self, x: Tensor, state: Any = None) -> Tuple[Tensor, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _kernel(self, ops: Any, x: Tensor) -> Optional[Tensor]:
        """The whole output from the kernel module `ops` (this class supplies its own parameters), or None
        when no kernel covers this neuron's settings."""
        return None

    def _fused(self, x: Tensor) -> Optional[Tensor]:
        """The whole output from a fused kernel, or None to use the reference loop (`kernels/gate.py`)."""
        if self.kernel_op is None or self.backend == "torch":
            return None
        ops = kernels_for(x, self.backend, self.kernel_op, type(self).__name__)
        if ops is None:
            return None
        out = self._kernel(ops, x) if x.dtype in ops.DTYPES else None
        if out is None and self.backend == "triton":
            refuse(type(self).__name__, f"no kernel covers this neuron (surrogate "
                                        f"{type(getattr(self, 'surrogate', None)).__name__}, dtype {x.dtype}); kernels "
                                        "exist for IFNode, LIFNode, PLIFNode, TernaryNode and ASNNode (spike mode) with "
                                        "the built-in surrogates, in fp32/bf16/fp16")
        return out

    def forward(self, x: Tensor) -> Tensor:
        check_time_first(x, type(self).__name__)
        out = self._fused(x)
        if out is None:
            out = self._reference(x.float()).to(x.dtype) if x.dtype in _LOW_PRECISION else self._reference(x)
        return mark_binary(out) if self.domain == "binary" else out

    def _reference(self, x: Tensor) -> Tensor:
        """The plain PyTorch loop over time (the specification the kernels are tested against)."""
        state = None
        spikes = []
        # unbind, not x[t]: its backward stacks the T gradients once, where T selects would each fill a zero
        # tensor of x's whole size (half the neuron's CPU time at T = 4; the same values)
        for xt in x.unbind(0):
            s, state = self.step(xt, state)
            spikes.append(s)
        return torch.stack(spikes)


def _positive(name: str, v: float, who: str) -> float:
    v = float(v)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{who}: {name} must be a positive number, got {v}")
    return v


class SpikingNeuron(Neuron):
    """Threshold neuron with a membrane potential `v`: H = charge(x, v); S = fire(H); v = reset(H, S).

    Args:
        v_threshold: firing threshold V_th.
        v_reset: hard-reset value; None selects soft reset (subtract V_th).
        surrogate: surrogate gradient name or instance ("sigmoid", "atan", "triangle", "rectangle", "ste").
        alpha: the surrogate's sharpness; None keeps the surrogate's default (sigmoid 4, atan 2).
        detach_reset: stop the gradient through the reset path (the convention of every official repo).
        backend: "auto" (fused kernel when one exists for the tensor's device), "torch" (reference), "triton".
    """

    domain = "binary"
    kernel_op = "neuron"

    def __init__(
        self,
        *,
        v_threshold: float = 1.0,
        v_reset: Optional[float] = 0.0,
        surrogate: Union[str, Surrogate] = "sigmoid",
        alpha: Optional[float] = None,
        detach_reset: bool = True,
        backend: str = "auto",
    ):
        super().__init__()
        who = type(self).__name__
        self.v_threshold = _positive("v_threshold", v_threshold, who)
        if v_reset is not None:
            v_reset = float(v_reset)
            if not math.isfinite(v_reset) or v_reset >= self.v_threshold:
                raise ValueError(f"{who}: v_reset must be finite and below v_threshold, got {v_reset}")
        self.v_reset = v_reset
        self.surrogate = create_surrogate(surrogate, alpha)
        if not isinstance(detach_reset, bool):
            raise ValueError(f"{who}: detach_reset must be True or False, got {detach_reset!r}")
        self.detach_reset = detach_reset
        if backend not in BACKENDS:
            raise ValueError(f"{who}: unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
        self.backend = backend

    # --- the three parts of a step; a new neuron usually overrides only `charge` -------------------
    def charge(self, x: Tensor, v: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def fire(self, h: Tensor) -> Tensor:
        return self.surrogate(h - self.v_threshold)

    def reset(self, h: Tensor, s: Tensor) -> Tensor:
        s = s.detach() if self.detach_reset else s
        if self.v_reset is None:
            return h - s * self.v_threshold
        return h * (1 - s) + self.v_reset * s

    def rest(self, x: Tensor) -> Tensor:
        """The membrane potential before the first input: V_reset (0 for soft reset)."""
        return torch.full_like(x, 0.0 if self.v_reset is None else self.v_reset)

    def step(self, x: Tensor, state: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        v = self.rest(x) if state is None else state
        h = self.charge(x, v)
        s = self.fire(h)
        return s, self.reset(h, s)

    def surrogate_id(self, ops: Any) -> Optional[int]:
        """This neuron's surrogate as the kernels' index (`ops.SURROGATES`), or None when they lack it (a
        subclass of a built-in surrogate is not the built-in one)."""
        for i, name in enumerate(ops.SURROGATES):
            if type(self.surrogate) is SURROGATES.get(name):
                return i
        return None

    def extra_repr(self) -> str:
        return f"v_threshold={self.v_threshold}, v_reset={self.v_reset}, detach_reset={self.detach_reset}, backend={self.backend!r}"
