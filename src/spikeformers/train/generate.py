"""Generate text from a trained language-model run, streaming through the model's explicit-state `step()`.

    spikeformers generate runs/NAME --prompt "The " --max-new-tokens 200 [--temperature 0.8 --top-k 40 --seed 0]
"""
from __future__ import annotations

import math
import sys
import time
from typing import Any, Dict, Optional, TextIO

import torch

from ..errors import ConfigError
from .evaluate import load_trained_model

__all__ = ["generate_from_run"]


def generate_from_run(run_dir: str, prompt: str, max_new_tokens: int, temperature: float = 1.0,
                      top_k: Optional[int] = None, seed: int = 0, device: str = "auto",
                      echo: bool = True) -> Dict[str, Any]:
    """Continue `prompt` by `max_new_tokens` tokens, writing the text to stdout as it is produced (`echo`).

    Returns the prompt, the generated text and ids, and the generation speed (tokens/s, prompt excluded).
    """
    if max_new_tokens < 1:
        raise ConfigError(f"--max-new-tokens must be >= 1, got {max_new_tokens}")
    if not math.isfinite(temperature) or temperature < 0:  # NaN slipped past `< 0` into the sampler
        raise ConfigError(f"--temperature must be a finite number >= 0 (0: greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"--top-k must be >= 1, got {top_k}")
    model, cfg, dataset = load_trained_model(run_dir, device)
    tokenizer = getattr(dataset, "tokenizer", None)
    if tokenizer is None or not hasattr(model, "stream"):
        raise ConfigError(f"{run_dir} is not a language-model run (model {cfg.model.name}, data {cfg.data.name}): "
                          f"generate needs a model trained on text, e.g. configs/spiking_lm_tiny_gcide.yaml")
    ids = tokenizer.encode(prompt)
    if not ids:
        raise ConfigError(f"the prompt {prompt!r} encodes to no tokens: give at least one character")
    dev = next(model.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(seed)
    x = torch.tensor([ids], device=dev)
    decode, new = tokenizer.stream_decoder(), []
    out: Optional[TextIO] = sys.stdout if echo else None
    if out is not None:
        out.write(prompt)
        out.flush()
    t0 = time.perf_counter()
    for t in model.stream(x, max_new_tokens, temperature=temperature, top_k=top_k, generator=gen):
        tok = int(t[0])
        new.append(tok)
        if out is not None:
            out.write(decode([tok]))
            out.flush()
    seconds = time.perf_counter() - t0
    if out is not None:
        out.write("\n")
    return {"prompt": prompt, "text": tokenizer.decode(new), "ids": new, "tokens": len(new), "seconds": seconds,
            "tokens_per_s": len(new) / seconds if seconds > 0 else float("inf"), "device": str(dev)}
