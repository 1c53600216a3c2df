"""Models in the Hugging Face Hub folder layout: `save_pretrained(model, DIR)` writes `config.json` (the
registered model name and its arguments) and `model.safetensors`; `from_pretrained(DIR)` rebuilds it;
`convert_file(CHECKPOINT, DIR)` writes one from an official checkpoint (`convert.py` maps its names).
Nothing is downloaded or unpickled; `huggingface_hub` can upload the folder as it is.

`config.json` may also carry `pretrained_cfg` (as timm's): the input transform the model was trained behind
(`data/transform.py`: layout, channels, size, frames; uint8 pixels are divided by 255) and the class names.
`from_pretrained` returns it as `model.pretrained_cfg` ({} when the folder has none), so that

    t = InputTransform.from_dict(model.pretrained_cfg["input"])
    probs = model(t(uint8_images)).softmax(-1)

takes the raw samples `spikeformers predict` takes. Loading checks before allocating: the config's types and
sizes (the model is built on the meta device first) and the tensors' names and shapes against the
safetensors header; then whether the weights fit in memory.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from ..data.transform import InputTransform
from ..errors import CheckpointError, ConfigError
from ..io import (atomic_write_bytes, atomic_write_json, load_model_state, load_safetensors, safetensors_bytes,
                  safetensors_header)
from ..version import __version__
from . import footprint
from .convert import convert_state_dict, guess_source, read_state_dict
from .registry import create_model, list_models

__all__ = ["save_pretrained", "from_pretrained", "convert_file"]


def save_pretrained(model: nn.Module, folder: str, pretrained_cfg: Optional[Dict[str, Any]] = None) -> str:
    """`folder/config.json` + `folder/model.safetensors` (the Hub layout). The model must come from
    `create_model` (it records its name and arguments). `pretrained_cfg` (default: the model's own, as
    `from_pretrained` set it): {"input": InputTransform.to_dict(), "class_names": [...]}, either key optional."""
    name, args = getattr(model, "model_name", None), getattr(model, "model_args", None)
    if name is None or args is None:
        raise ConfigError("save_pretrained needs a model made by create_model (it records name and arguments)")
    pretrained_cfg = _checked_pretrained_cfg(
        pretrained_cfg if pretrained_cfg is not None else getattr(model, "pretrained_cfg", None) or {}, model,
        "save_pretrained")
    os.makedirs(folder, exist_ok=True)
    atomic_write_bytes(os.path.join(folder, "model.safetensors"),
                       safetensors_bytes({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}))
    cfg = {"library": "spikeformers", "version": __version__, "model": name, "model_args": args}
    if pretrained_cfg:
        cfg["pretrained_cfg"] = pretrained_cfg
    atomic_write_json(os.path.join(folder, "config.json"), cfg)
    return folder


def _checked_pretrained_cfg(pc: Any, model: nn.Module, where: str) -> Dict[str, Any]:
    """`pc` as plain JSON values, or a ConfigError naming what is wrong (`where`: the file or the call)."""
    if not isinstance(pc, dict) or set(pc) - {"input", "class_names"}:
        raise ConfigError(f"{where}: pretrained_cfg must be a mapping with 'input' and/or 'class_names', got {pc!r}")
    out: Dict[str, Any] = {}
    if pc.get("input") is not None:
        try:
            out["input"] = InputTransform.from_dict(pc["input"]).to_dict()
        except ValueError as e:
            raise ConfigError(f"{where}: pretrained_cfg input: {e}") from None
    names = pc.get("class_names")
    if names is not None:
        classes = getattr(getattr(model, "cfg", None), "num_classes", None)
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names) \
                or (classes is not None and len(names) != classes):
            raise ConfigError(f"{where}: pretrained_cfg class_names must be a list of {classes or 'the'} class "
                              f"names (strings), got {names!r}")
        out["class_names"] = list(names)
    return out


def _read_config(cfg_path: str) -> Tuple[str, Dict[str, Any], Any]:
    """(model name, model arguments, pretrained_cfg) of a config.json, its types checked."""
    try:
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{cfg_path} not found: not a save_pretrained folder") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"{cfg_path} is not a spikeformers config (not JSON: {' '.join(str(e).split())})") from None
    if not isinstance(cfg, dict) or "model" not in cfg:
        raise ConfigError(f"{cfg_path} is not a spikeformers config (no \"model\" entry)")
    name, args = cfg["model"], cfg.get("model_args", {})
    if not isinstance(name, str):
        raise ConfigError(f"{cfg_path}: \"model\" must be a registered model name (a string), got {name!r}")
    if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
        raise ConfigError(f"{cfg_path}: \"model_args\" must be a mapping of option names to values, got {args!r}")
    return name, args, cfg.get("pretrained_cfg") or {}


def _check_header(model: nn.Module, path: str) -> None:
    """The file's tensor names and shapes (its header) against the model's, before anything is read."""
    header = safetensors_header(path)
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(want) - set(header))
    unexpected = sorted(set(header) - set(want))
    shapes = [f"{k} {list(header[k]['shape'])} (the model's {list(want[k])})" for k in want
              if k in header and tuple(header[k]["shape"]) != want[k]]
    if missing or unexpected or shapes:
        parts = ([f"shape mismatch of {len(shapes)}: {', '.join(shapes[:3])}"] if shapes else []) + \
                ([f"missing {len(missing)}: {', '.join(missing[:3])}"] if missing else []) + \
                ([f"unexpected {len(unexpected)}: {', '.join(unexpected[:3])}"] if unexpected else [])
        raise CheckpointError(f"{path} does not match the model its config.json describes ({'; '.join(parts)})")


def from_pretrained(folder: str, device: str = "cpu") -> nn.Module:
    """Rebuild a model saved by `save_pretrained` (safetensors and JSON only: nothing is unpickled); its
    `pretrained_cfg` (input transform, class names) is `model.pretrained_cfg`."""
    cfg_path = os.path.join(folder, "config.json")
    name, args, pc = _read_config(cfg_path)
    try:
        meta = footprint.meta_model(name, args)
    except (ValueError, TypeError) as e:  # unknown model or option, a size no model can have
        raise ConfigError(f"{cfg_path}: {' '.join(str(e).split())}") from None
    pretrained_cfg = _checked_pretrained_cfg(pc, meta, cfg_path)
    path = os.path.join(folder, "model.safetensors")
    _check_header(meta, path)
    _check_fits(meta, f"{cfg_path}: {name} with {args}")
    model = create_model(name, **args)
    load_model_state(model, load_safetensors(path, "cpu"), path)
    model.pretrained_cfg = pretrained_cfg
    return model.to(device).eval()


def _check_fits(meta: nn.Module, what: str) -> None:
    """A one-line ConfigError when the weights of a model (built on the meta device) exceed the host's memory."""
    need = footprint.weight_bytes(meta)
    free = footprint.fits(need, torch.device("cpu"))
    if free is not None:
        raise ConfigError(f"{what} holds {footprint.gigabytes(need)} of weights, more than the "
                          f"{footprint.gigabytes(free)} of memory available")


def _infer_model(src: Dict[str, Tensor], source: str) -> Tuple[str, Dict]:
    """The registered model whose layout the state dict fits (depth, width, classes, input channels)."""
    head = src.get("head.weight")
    first = next((src[k] for k in ("patch_embed.proj_conv.weight", "patch_embed1.proj_conv.weight",
                                   "patch_embed.stages.0.conv_bn.block.0.weight") if k in src), None)
    if head is None or first is None:
        raise ConfigError("cannot infer the model (no head.weight or first patch conv): pass --model NAME")
    kw = {"num_classes": head.shape[0], "in_chans": first.shape[1]}
    for name in list_models({"sdt": "sdt_*", "qkformer": "qkformer_*"}.get(source, "spikformer_*")):
        with torch.device("meta"):
            try:
                model = create_model(name, **kw)
                convert_state_dict(src, model, source)
            except (ConfigError, ValueError):
                continue
        return name, kw
    raise ConfigError(f"no registered {source} model fits this checkpoint (width {head.shape[1]}, {kw['num_classes']} "
                      f"classes): pass --model NAME and its options")


def convert_file(path: str, out_dir: str, source: Optional[str] = None, model_name: Optional[str] = None,
                 options: Optional[Dict] = None) -> Dict:
    """Convert an official checkpoint file into a `save_pretrained` folder; returns what was built."""
    src = read_state_dict(path)
    source = source or guess_source(src)
    if model_name is None:
        model_name, options = _infer_model(src, source)
    try:
        meta = footprint.meta_model(model_name, options or {})
    except (ValueError, TypeError) as e:
        raise ConfigError(f"--model {model_name}: {' '.join(str(e).split())}") from None
    _check_fits(meta, f"{model_name} with {options or {}}")
    model = create_model(model_name, **(options or {}))
    model.load_state_dict(convert_state_dict(src, model, source))
    save_pretrained(model, out_dir)
    return {"path": out_dir, "model": model_name, "options": options or {}, "source": source,
            "tensors": len(src)}
