"""Trained runs out: ONNX inference graphs, and folders in the Hugging Face Hub layout (`models/hub.py`).

    spikeformers export runs/NAME --format onnx        # -> runs/NAME/model.onnx
    spikeformers export runs/NAME --format hub         # -> runs/NAME/hub/{config.json, model.safetensors}

ONNX: the graph is traced in eval mode, so the T time steps are unrolled and every neuron is its
Heaviside step (the surrogate gradient exists only in training). The run's input transform is part
of the graph: images enter as uint8 `[B, C, H, W]` (divided by 255 inside), event frames as float
counts `[B, T, 2, H, W]` (made time-first inside), sequences as float `[B, L, F]`. The output is
`logits [B, classes]`; with `spikes=True` every spiking layer's output follows it, named by layer, so
a runtime's spikes can be compared with PyTorch's. The batch axis is dynamic.

Hub: `models/hub.py` (`save_pretrained`, `from_pretrained`).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from typing import Any, Dict, List, Optional

import torch
from torch import Tensor, nn

from .data.transform import InputTransform
from .errors import ConfigError
from .io import atomic_write_bytes
from .models.hub import save_pretrained
from .neurons.monitor import spiking_layers
from .train.evaluate import load_trained_model
from .train.run import build_task

__all__ = ["export_onnx", "export_run"]


class _Exported(nn.Module):
    """Raw input -> the model's input (the transform, as graph ops) -> logits (and each layer's spikes)."""

    def __init__(self, model: nn.Module, transform: InputTransform, spikes: bool):
        super().__init__()
        self.model, self.transform = model, transform
        self.layers = list(spiking_layers(model)) if spikes else []
        self._seen: List[Tensor] = []
        modules = dict(model.named_modules())
        self.hooks = [modules[n].register_forward_hook(lambda m, i, o: self._seen.append(o)) for n in self.layers]

    def forward(self, x: Tensor):
        t = self.transform
        if t.layout == "image":
            x = x.float() / 255.0
        elif t.layout == "events":
            x = x.float().transpose(0, 1)  # [B, T, ...] -> [T, B, ...]
        self._seen = []
        logits = self.model(x)
        return (logits, *self._seen) if self.layers else logits


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter prints its progress lines to stdout; keep the command's output to its own result."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def export_onnx(model: nn.Module, transform: InputTransform, path: str, spikes: bool = False,
                opset: int = 17) -> Dict[str, Any]:
    """Write `model` (eval mode) behind its input transform as ONNX at `path` (atomically)."""
    try:
        import onnx
    except ImportError:
        raise ConfigError("ONNX export needs the onnx package: pip install onnx onnxruntime") from None

    model = model.eval()
    wrapper = _Exported(model, transform, spikes).eval()
    dtype = torch.uint8 if transform.layout == "image" else torch.float32
    example = torch.zeros((2, *transform.sample_shape), dtype=dtype)
    names = ["logits"] + [f"spikes.{n}" for n in wrapper.layers]
    tmp = f"{path}.tmp-{os.getpid()}"
    try:  # torch.export-based: traces the Python loop over T (unrolled), keeps the batch axis symbolic
        with torch.no_grad():
            out = wrapper(example)
        if not isinstance(out, (Tensor, tuple)) or (out[0] if isinstance(out, tuple) else out).dim() != 2:
            raise ConfigError("ONNX export covers classification models (logits [B, classes]); this model's "
                              "output is not (dense and language models are not exported yet)")
        with warnings.catch_warnings(), _quiet_exporter():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, (example,), tmp, input_names=["input"], output_names=names,
                              opset_version=opset, dynamo=True, verbose=False,
                              dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1 << 16)},))
        graph = onnx.load(tmp)
    except ConfigError:
        raise
    except Exception as e:  # name the part the exporter could not take
        raise ConfigError(f"ONNX export failed: {type(e).__name__}: {str(e).splitlines()[0][:300]}") from None
    finally:
        for h in wrapper.hooks:
            h.remove()
        if os.path.exists(tmp):
            os.remove(tmp)
    for o in graph.graph.output[1:]:  # spike outputs: their batch axis varies by layer layout; leave shapes open
        o.type.tensor_type.ClearField("shape")
    atomic_write_bytes(path, graph.SerializeToString())
    return {"path": path, "input": {"name": "input", "dtype": str(dtype).replace("torch.", ""),
                                    "shape": ["batch", *transform.sample_shape]},
            "outputs": names, "opset": opset}


def export_run(run_dir: str, fmt: str = "onnx", out: Optional[str] = None, spikes: bool = False) -> Dict[str, Any]:
    """Export a trained run: `onnx` (model.onnx, its input transform included) or `hub` (a Hub folder)."""
    if fmt not in ("onnx", "hub"):
        raise ConfigError(f"unknown export format {fmt!r}; use onnx or hub")
    model, cfg, dataset = load_trained_model(run_dir, "cpu")
    if fmt == "hub":
        return {"path": save_pretrained(model, out or os.path.join(run_dir, "hub"))}
    task = build_task(cfg, dataset)
    if not task.exports_onnx:
        raise ConfigError(f"{run_dir}: ONNX export covers classification runs; this run's task is {task.name!r} "
                          f"(--format hub exports any run)")
    return export_onnx(model, InputTransform.of(dataset), out or os.path.join(run_dir, "model.onnx"), spikes=spikes)
