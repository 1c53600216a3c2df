"""Trained runs out: ONNX inference graphs, and folders in the Hugging Face Hub layout (`models/hub.py`).

    spikeformers export runs/NAME --format onnx        # -> runs/NAME/model.onnx
    spikeformers export runs/NAME --format hub         # -> runs/NAME/hub/{config.json, model.safetensors}

ONNX: the graph (opset 18, the torch.export-based exporter's own) is traced in eval mode, so the T time
steps are unrolled and every neuron is its Heaviside step (the surrogate gradient exists only in training). The run's input transform is part
of the graph: images enter as uint8 `[B, C, H, W]` (divided by 255 inside), event frames as float
counts `[B, T, 2, H, W]` (made time-first inside), sequences as float `[B, L, F]`. The output is
`logits [B, classes]`; with `spikes=True` every spiking layer's output follows it, named by layer, so
a runtime's spikes can be compared with PyTorch's. The batch axis is dynamic.

Hub: `models/hub.py` (`save_pretrained`, `from_pretrained`); a run's folder carries its input transform
and class names (`pretrained_cfg`).

The exporter writes nothing itself: the graph is built in memory, checked, and written atomically, so no
temporary file is left on success or failure, and its progress lines, warnings and logged tracebacks are
kept out of the command's output (a failure's first line becomes the error).
"""
from __future__ import annotations

import contextlib
import importlib
import io
import logging
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


#: what the torch.export-based exporter needs (onnxruntime, to run the graph, is in the same extra)
_NEEDS = ("onnx", "onnxscript")


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter prints progress lines, warns, and logs tracebacks of steps it recovers from; keep the
    command's output to its own result (an error still surfaces as the exception it raises)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.CRITICAL)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _require_packages() -> Any:
    """The onnx module, or one ConfigError naming every missing package."""
    missing = []
    for name in _NEEDS:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ConfigError(f"ONNX export needs the package{'s' if len(missing) > 1 else ''} {', '.join(missing)}: "
                          f"pip install {' '.join(_NEEDS)} onnxruntime (or pip install 'spikeformers[export]')")
    return importlib.import_module("onnx")


def export_onnx(model: nn.Module, transform: InputTransform, path: str, spikes: bool = False,
                opset: int = 18) -> Dict[str, Any]:
    """Write `model` (eval mode) behind its input transform as ONNX at `path` (atomically; its folder is
    created). The result's `opset` is the one the file declares."""
    onnx = _require_packages()
    model = model.eval()
    wrapper = _Exported(model, transform, spikes).eval()
    dtype = torch.uint8 if transform.layout == "image" else torch.float32
    example = torch.zeros((2, *transform.sample_shape), dtype=dtype)
    names = ["logits"] + [f"spikes.{n}" for n in wrapper.layers]
    try:  # torch.export-based: traces the Python loop over T (unrolled), keeps the batch axis symbolic
        with torch.no_grad():
            out = wrapper(example)
        if not isinstance(out, (Tensor, tuple)) or (out[0] if isinstance(out, tuple) else out).dim() != 2:
            raise ConfigError("ONNX export covers classification models (logits [B, classes]); this model's "
                              "output is not (dense and language models are not exported yet)")
        with _quiet_exporter():  # f=None: the program stays in memory, no file (nor external data) is written
            program = torch.onnx.export(wrapper, (example,), None, input_names=["input"], output_names=names,
                                        opset_version=opset, dynamo=True, verbose=False,
                                        dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1 << 16)},))
            graph = onnx.load_from_string(program.model_proto.SerializeToString())
    except ConfigError:
        raise
    except Exception as e:  # name the part the exporter could not take
        first = (str(e).strip().splitlines() or [""])[0][:300]
        raise ConfigError(f"ONNX export failed: {type(e).__name__}: {first}") from None
    finally:
        for h in wrapper.hooks:
            h.remove()
    for o in graph.graph.output[1:]:  # spike outputs: their batch axis varies by layer layout; leave shapes open
        o.type.tensor_type.ClearField("shape")
    written = next((o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")), None)
    atomic_write_bytes(path, graph.SerializeToString())
    return {"path": path, "input": {"name": "input", "dtype": str(dtype).replace("torch.", ""),
                                    "shape": ["batch", *transform.sample_shape]},
            "outputs": names, "opset": written}


def export_run(run_dir: str, fmt: str = "onnx", out: Optional[str] = None, spikes: bool = False) -> Dict[str, Any]:
    """Export a trained run: `onnx` (model.onnx, its input transform included) or `hub` (a Hub folder)."""
    if fmt not in ("onnx", "hub"):
        raise ConfigError(f"unknown export format {fmt!r}; use onnx or hub")
    model, cfg, dataset = load_trained_model(run_dir, "cpu")
    if fmt == "hub":
        return {"path": save_pretrained(model, out or os.path.join(run_dir, "hub"), _pretrained_cfg(dataset))}
    task = build_task(cfg, dataset)
    if not task.exports_onnx:
        raise ConfigError(f"{run_dir}: ONNX export covers classification runs; this run's task is {task.name!r} "
                          f"(--format hub exports any run)")
    return export_onnx(model, InputTransform.of(dataset), out or os.path.join(run_dir, "model.onnx"), spikes=spikes)


def _pretrained_cfg(dataset: Any) -> Dict[str, Any]:
    """What a Hub folder keeps of the run's data: the input transform (array data) and the class names."""
    pc: Dict[str, Any] = {}
    if getattr(dataset, "layout", None) is not None:
        pc["input"] = InputTransform.of(dataset).to_dict()
    if getattr(dataset, "class_names", None):
        pc["class_names"] = list(dataset.class_names)
    return pc
