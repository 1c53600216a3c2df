"""`GraphedStep`: a training step's forward, loss, backward and gradient clipping as one CUDA graph.

A spiking transformer step launches thousands of small kernels (every neuron, BatchNorm and
reshape, forward and backward), so on a fast GPU the host's launch overhead, not the GPU, sets the
pace at moderate batch sizes. Replaying a captured graph issues them all in one call.

What is captured: `loss_fn(model(x), y).backward()` under autocast, then `clip_grad_norm_`. The
optimizer step stays eager (a fused AdamW is a few launches; keeping it out leaves the learning-rate
schedule and the optimizer's state_dict untouched). Gradients live in the graph's memory and are
overwritten by each replay, so the caller must not `zero_grad` in between.

Capture happens on the first call and again whenever the batch's shape or dtype changes (e.g. when
mixing stops and targets turn from soft to hard). Two warm-up passes before each capture compile the
kernels and initialise cuDNN/cuBLAS; they change no parameter, and the BatchNorm buffers they update
are restored, so a graphed run trains exactly like an eager one (tests/test_cuda_graph.py).

`fallback=True` (what `run.cuda_graph=auto` and `make_step` use): when the capture fails, one line
says why and the step runs eagerly from then on, computing the same thing; otherwise the failure is
an error.

Limits: no DDP wrapper inside (its gradient hooks cannot be captured: under torchrun the engine
replays this step without DDP and then does DDP's work itself, one all-reduce of the gradients and
one broadcast of the buffers, `Distributed.average_gradients` / `broadcast_tensors`; capturing those
collectives in the graph was tried on 2 H200s: same losses, no faster, and the job hung at exit), no
`torch.compile` around it, static shapes, and a model whose training forward makes no host
synchronisation (all built-in models qualify).
"""
from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.utils._pytree import tree_flatten, tree_map

from .step import forward_backward

__all__ = ["GraphedStep"]


@contextmanager
def _sync_is_error(on: bool):
    """Within (when `on`): an operation that synchronises with the host raises (torch.cuda.set_sync_debug_mode)."""
    was = torch.cuda.get_sync_debug_mode()
    if on:
        _set_sync_debug_mode("error")
    try:
        yield
    finally:
        _set_sync_debug_mode(was)


def _set_sync_debug_mode(mode) -> None:
    # torch warns on every run that the mode is a prototype: noise in the user's console for a check of ours
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Synchronization debug mode is a prototype")
        torch.cuda.set_sync_debug_mode(mode)


def _end_generator_capture(device: torch.device) -> None:
    """After a failed capture CUDA's default generator still believes it is capturing (its epilogue never
    ran) and refuses random numbers; one trivial capture that succeeds runs the epilogue."""
    try:
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            torch.empty(1, device=device).add_(1)
        del g
    except RuntimeError:
        pass


class GraphedStep:
    """`step(x, y) -> (loss, logits)` (both detached, valid until the next call) with gradients left in
    the parameters' `.grad` for an eager `optimizer.step()`."""

    def __init__(self, model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor], amp: Optional[torch.dtype] = None,
                 grad_clip: Optional[float] = None, per_step: bool = False, warmup: int = 2, fallback: bool = False):
        self.model, self.loss_fn, self.amp = model, loss_fn, amp
        self.grad_clip, self.per_step, self.warmup, self.fallback = grad_clip, per_step, warmup, fallback
        self.eager = False  # set when a capture failed and fallback is on
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.graph: Optional[torch.cuda.CUDAGraph] = None
        self.key: Optional[tuple] = None
        self.captures = 0

    def __call__(self, x: Tensor, y: Any) -> Tuple[Tensor, Any]:
        if x.device.type != "cuda":
            raise RuntimeError(f"GraphedStep: CUDA graphs need CUDA tensors, got a {x.device.type} batch")
        if self.eager:
            self.model.zero_grad(set_to_none=True)
            return forward_backward(self.model, x, y, self.loss_fn, self.amp, self.grad_clip, self.params, self.per_step)
        leaves, spec = tree_flatten(y)  # targets: a tensor, or a dict of them (dense tasks)
        key = (tuple(x.shape), x.dtype, x.stride(), str(spec), tuple((tuple(t.shape), t.dtype) for t in leaves))
        if key != self.key:
            try:
                self._capture(x, y, key)
            except RuntimeError as e:
                if not self.fallback:
                    raise
                print(f"note: {e}; training eagerly", file=sys.stderr, flush=True)
                self.graph, self.key, self.eager = None, None, True
                return self(x, y)
        self.x.copy_(x)
        for dst, src in zip(tree_flatten(self.y)[0], leaves):
            dst.copy_(src)
        self.graph.replay()
        return self.loss, self.logits

    def _forward_backward(self) -> Tuple[Tensor, Tensor]:
        return forward_backward(self.model, self.x, self.y, self.loss_fn, self.amp, self.grad_clip, self.params,
                                self.per_step, cache=False)  # autocast's cast cache must not outlive a capture

    def _capture(self, x: Tensor, y: Tensor, key: tuple) -> None:
        self.graph = None  # free the previous graph's memory first
        self.x, self.y = torch.empty_like(x).copy_(x), tree_map(lambda t: torch.empty_like(t).copy_(t), y)
        buffers = [b.detach().clone() for b in self.model.buffers()]  # restored after a failed capture too
        rng = torch.cuda.get_rng_state(x.device)
        side = torch.cuda.Stream(x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        try:
            with torch.cuda.stream(side):
                for i in range(self.warmup):
                    # the last pass (kernels compiled, cuDNN tuned) must not wait for the host: a capture
                    # would fail on it, and a failed capture leaves CUDA's generator unusable
                    with _sync_is_error(i == self.warmup - 1):
                        self._forward_backward()
            torch.cuda.current_stream(x.device).wait_stream(side)
            self._restore(buffers, rng, x.device)
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph):
                    self.loss, self.logits = self._forward_backward()
            except RuntimeError:
                _end_generator_capture(x.device)
                raise
        except RuntimeError as e:
            torch.cuda.current_stream(x.device).wait_stream(side)
            self._restore(buffers, rng, x.device)
            raise RuntimeError(f"GraphedStep: {type(self.model).__name__}'s training step could not be captured as a "
                               f"CUDA graph ({str(e).splitlines()[0]}); train without run.cuda_graph") from e
        self.graph, self.key = graph, key
        self.captures += 1

    def _restore(self, buffers, rng: Tensor, device: torch.device) -> None:
        """Undo what the warm-up passes (or a failed capture) did: BatchNorm buffers, RNG, gradients."""
        with torch.no_grad():
            for b, saved in zip(self.model.buffers(), buffers):
                b.copy_(saved)
        torch.cuda.set_rng_state(rng, device)
        self.model.zero_grad(set_to_none=True)  # the captured backward then writes, not adds, the gradients
