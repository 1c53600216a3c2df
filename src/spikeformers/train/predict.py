"""A trained run as a predictor of raw inputs, and `spikeformers predict RUN FILES...`.

    from spikeformers.train import load_predictor
    p = load_predictor("runs/NAME")
    probs = p(images_uint8)                  # [B, classes]: the run's input transform, model, softmax
    p.read("shirt.png")                      # a file as one raw sample of the run's input shape

    spikeformers predict runs/NAME a.png b.npy --top-k 3        # classification runs
    spikeformers predict runs/LM --text "Horse, n. " --top-k 5  # language-model runs: the next byte

Files: images (`.png`, `.jpg`, `.jpeg`, `.bmp`, `.gif`, `.webp`; converted to the run's channels and
resized to its size with bilinear filtering), `.npy` arrays (one sample or a
batch, see `data/transform.py`), and text files for language models.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..data.transform import InputTransform
from ..errors import ConfigError
from .evaluate import load_trained_model
from .run import build_task
from ..io import atomic_write_json, oneline

__all__ = ["Predictor", "load_predictor", "predict_files"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


class Predictor(nn.Module):
    """The trained model behind its input transform: raw samples in, class probabilities out (eval mode)."""

    def __init__(self, model: nn.Module, transform: Optional[InputTransform], tokenizer: Any = None):
        super().__init__()
        self.model, self.transform, self.tokenizer = model.eval(), transform, tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def forward(self, x: Any, value_range: str = "auto") -> Tensor:
        """Probabilities `[B, classes]` of raw samples (see `InputTransform`); for an LM, `x` is text and the
        result is the next token's distribution `[vocab]`."""
        if self.tokenizer is not None:
            ids = self.tokenizer.encode(x)[-self.model.cfg.block_size:]
            if not ids:
                raise ConfigError("the text encodes to no tokens: give at least one character")
            return self.model(torch.tensor([ids], device=self.device))[0, -1].float().softmax(-1)
        logits = self.model(self.transform(x, value_range, device=self.device))
        if not isinstance(logits, Tensor) or logits.dim() != 2:
            raise ConfigError("predict gives class probabilities; this run's model makes dense predictions "
                              "(use spikeformers eval)")
        return logits.float().softmax(-1)

    def read(self, path: str) -> Any:
        """A file as one raw input: an image resized to the run's size, a .npy array, or text (LMs)."""
        if self.tokenizer is not None:
            return _read_text(path)
        low = path.lower()
        if low.endswith(".npy"):
            try:
                a = np.load(path, allow_pickle=False)
            except (ValueError, OSError, EOFError) as e:  # EOFError: an empty file
                raise ConfigError(f"{path}: not a readable .npy array ({oneline(e)})") from None
            if not isinstance(a, np.ndarray):  # an .npz archive under an .npy name
                a.close()
                raise ConfigError(f"{path}: not a readable .npy array (an .npz archive of several arrays)")
            return a
        if low.endswith(IMAGE_SUFFIXES):
            return self._read_image(path)
        raise ConfigError(f"{path}: unknown file type; give an image ({', '.join(IMAGE_SUFFIXES)}) or a .npy array")

    def _read_image(self, path: str) -> np.ndarray:
        t = self.transform
        if t.layout != "image" or t.in_chans not in (1, 3):
            raise ConfigError(f"{path}: this run's model takes {t.layout} input with {t.in_chans} channels, "
                              f"not images; give a .npy array of shape {list(t.sample_shape)}")
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                im = im.convert("L" if t.in_chans == 1 else "RGB")
                if im.size != (t.img_size, t.img_size):
                    im = im.resize((t.img_size, t.img_size), Image.BILINEAR)
                a = np.asarray(im, dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as e:
            raise ConfigError(f"{path}: not a readable image ({e})") from None
        return a if a.ndim == 2 else a.transpose(2, 0, 1)  # [H, W] or [C, H, W]


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None


def load_predictor(run_dir: str, device: str = "auto") -> Predictor:
    """The run's model (EMA weights when kept) with its input transform (or its tokenizer, for an LM)."""
    model, cfg, dataset = load_trained_model(run_dir, device)
    task = build_task(cfg, dataset)
    if not task.predicts:
        raise ConfigError(f"{run_dir}: predict serves classification and language-model runs; this run's task "
                          f"is {task.name!r} (use spikeformers eval)")
    tokenizer = getattr(dataset, "tokenizer", None)
    return Predictor(model, None if tokenizer is not None else InputTransform.of(dataset), tokenizer)


def predict_files(run_dir: str, files: Sequence[str] = (), text: Optional[str] = None, top_k: int = 5,
                  value_range: str = "auto", device: str = "auto", out: Optional[str] = None) -> Dict[str, Any]:
    """Top-k classes (or next tokens) with probabilities for each input; written to `out` (default
    RUN/predictions.json; an unwritable folder costs the file, not the result)."""
    if top_k < 1:
        raise ConfigError(f"--top-k must be >= 1, got {top_k}")
    if not files and text is None:
        raise ConfigError("give input files, or --text for a language-model run")
    p = load_predictor(run_dir, device)
    if text is not None and p.tokenizer is None:
        raise ConfigError("--text is for language-model runs; give image or .npy files")
    inputs: List[tuple] = [(f, p.read(f)) for f in files] + ([("--text", text)] if text is not None else [])
    rows = []
    for name, raw in inputs:
        try:
            probs = p(raw, value_range)
        except ValueError as e:  # a shape or dtype the model does not take: name the file
            raise ConfigError(f"{name}: {e}") from None
        probs = probs[None] if probs.dim() == 1 else probs
        for i, row in enumerate(probs):
            k = min(top_k, row.numel())
            val, idx = row.topk(k)
            top = [{"class": int(c), "prob": float(v)} for v, c in zip(val, idx)]
            if p.tokenizer is not None:
                for t in top:
                    t["token"] = p.tokenizer.decode([t["class"]])
            rows.append({"input": name if len(probs) == 1 else f"{name}[{i}]", "top": top})
    res: Dict[str, Any] = {"run_dir": run_dir, "predictions": rows,
                           "input": p.transform.to_dict() if p.transform else {"tokens": "bytes"}}
    res["path"] = out or os.path.join(run_dir, "predictions.json")
    try:
        atomic_write_json(res["path"], res)
    except OSError as e:
        res["write_error"], res["path"] = f"could not write {res['path']}: {e.strerror or e}", None
    return res
