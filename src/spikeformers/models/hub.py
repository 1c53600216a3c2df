"""Models in the Hugging Face Hub folder layout: `save_pretrained(model, DIR)` writes `config.json` (the
registered model name and its arguments) and `model.safetensors`; `from_pretrained(DIR)` rebuilds it;
`convert_file(CHECKPOINT, DIR)` writes one from an official checkpoint (`convert.py` maps its names).
Nothing is downloaded or unpickled; `huggingface_hub` can upload the folder as it is.
"""
from __future__ import annotations

import json
import os
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..io import atomic_write_bytes, atomic_write_json, load_model_state, load_safetensors, safetensors_bytes
from ..version import __version__
from .convert import convert_state_dict, guess_source, read_state_dict
from .registry import create_model, list_models

__all__ = ["save_pretrained", "from_pretrained", "convert_file"]


def save_pretrained(model: nn.Module, folder: str) -> str:
    """`folder/config.json` + `folder/model.safetensors` (the Hub layout). The model must come from
    `create_model` (it records its name and arguments)."""
    name, args = getattr(model, "model_name", None), getattr(model, "model_args", None)
    if name is None or args is None:
        raise ConfigError("save_pretrained needs a model made by create_model (it records name and arguments)")
    os.makedirs(folder, exist_ok=True)
    atomic_write_bytes(os.path.join(folder, "model.safetensors"),
                       safetensors_bytes({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}))
    atomic_write_json(os.path.join(folder, "config.json"),
                      {"library": "spikeformers", "version": __version__, "model": name, "model_args": args})
    return folder


def from_pretrained(folder: str, device: str = "cpu") -> nn.Module:
    """Rebuild a model saved by `save_pretrained` (safetensors and JSON only: nothing is unpickled)."""
    cfg_path = os.path.join(folder, "config.json")
    try:
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
        name, args = cfg["model"], cfg["model_args"]
    except FileNotFoundError:
        raise ConfigError(f"{cfg_path} not found: not a save_pretrained folder") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{cfg_path} is not a spikeformers config ({type(e).__name__}: {e})") from None
    model = create_model(name, **args)
    path = os.path.join(folder, "model.safetensors")
    load_model_state(model, load_safetensors(path, "cpu"), path)
    return model.to(device).eval()


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
    model = create_model(model_name, **(options or {}))
    model.load_state_dict(convert_state_dict(src, model, source))
    save_pretrained(model, out_dir)
    return {"path": out_dir, "model": model_name, "options": options or {}, "source": source,
            "tensors": len(src)}
