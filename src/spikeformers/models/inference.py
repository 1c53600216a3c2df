"""`InferenceGraph(model)`: a model's evaluation forward replayed as a CUDA graph, one per input shape.

A spiking transformer's forward launches thousands of small kernels (every neuron, norm and reshape at
every layer); at evaluation the host's launch cost, not the GPU, sets the pace, as in training
(`train/cuda_graph.py`). Replaying a captured forward issues them all in one call. Evaluation loops
(`Task.evaluate`) and the inference benchmark use it.

    fwd = InferenceGraph(model)          # model in eval mode
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = fwd(x)                     # a graph buffer: valid until the next call of the same shape

Each distinct (input shape, dtype, autocast dtype) gets its own graph after one eager warm-up pass; all share
one memory pool. Where a graph does not apply it is the model's own forward: on the CPU, with grad enabled,
in training mode, while a forward hook watches any module (the firing-rate monitor and the energy counter
read every call), and after a capture failed (one line says why; a model whose forward waits for the host
cannot be captured). Outputs equal the eager forward's (tests/test_inference_graph.py, on a GPU).
"""
from __future__ import annotations

import sys
from typing import Any, Dict, Optional

import torch
from torch import Tensor, nn
from torch.nn.modules import module as _module

__all__ = ["InferenceGraph"]

#: graphs kept per model (evaluation has a full batch and a last, shorter one)
MAX_GRAPHS = 4


def _hooked(model: nn.Module) -> bool:
    if _module._global_forward_hooks or _module._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


class InferenceGraph:
    """`graph(x) -> model(x)` in eval mode and without grad, replayed as a CUDA graph where it applies."""

    def __init__(self, model: nn.Module, enabled: bool = True):
        self.model, self.enabled = model, enabled
        self.graphs: Dict[tuple, Any] = {}
        self.pool = None
        self.failed: Optional[str] = None

    def _applies(self, x: Any) -> bool:
        return (self.enabled and self.failed is None and isinstance(x, Tensor) and x.is_cuda
                and not torch.is_grad_enabled() and not self.model.training and not _hooked(self.model))

    def __call__(self, x: Any) -> Any:
        if not self._applies(x):
            return self.model(x)
        amp = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else None
        key = (tuple(x.shape), x.dtype, x.stride(), amp)
        entry = self.graphs.get(key)
        if entry is None:
            if len(self.graphs) >= MAX_GRAPHS:
                return self.model(x)
            try:
                entry = self._capture(x)
            except RuntimeError as e:
                self.failed = str(e).splitlines()[0]
                print(f"note: evaluating eagerly, without a CUDA graph: {type(self.model).__name__}'s forward could not "
                      f"be captured ({self.failed})", file=sys.stderr, flush=True)
                return self.model(x)
            self.graphs[key] = entry
        graph, static_x, out = entry
        static_x.copy_(x)
        graph.replay()
        return out

    def _capture(self, x: Tensor):
        static_x = torch.empty_like(x).copy_(x)
        side = torch.cuda.Stream(x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side):
            self.model(static_x)  # warm-up: kernels compile, cuBLAS picks its algorithms
        torch.cuda.current_stream(x.device).wait_stream(side)
        if self.pool is None:
            self.pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        # autocast's cast cache must not outlive the capture (its cached casts would be graph memory)
        with torch.cuda.graph(graph, pool=self.pool), torch.autocast("cuda", enabled=torch.is_autocast_enabled("cuda"),
                                                                     dtype=torch.get_autocast_dtype("cuda"),
                                                                     cache_enabled=False):
            out = self.model(static_x)
        return graph, static_x, out
