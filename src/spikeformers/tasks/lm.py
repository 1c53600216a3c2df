"""Language modelling on token streams (`TokenDataset`): next-token cross-entropy, bits per byte.

The metric `bpc` is the mean negative log2-likelihood per byte of UTF-8 text: per character for ASCII
text, and per token for byte tokens. Perplexity (`ppl`, per token) is reported beside it. Every epoch
evaluates the validation split; the end of a run evaluates validation and test.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import WindowLoader
from ..errors import ConfigError
from .base import Task
from .registry import register_task

__all__ = ["LanguageModelTask", "NextTokenLoss"]

LN2 = math.log(2.0)


class NextTokenLoss(nn.Module):
    """Mean cross-entropy of `logits [B, N, vocab]` against the next tokens `[B, N]` (label smoothing as
    the classification loss's, from `task.options.label_smoothing`; recipes for text set it to 0)."""

    per_step = False

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits.flatten(0, -2), target.flatten(), label_smoothing=self.label_smoothing)


@register_task("lm")
class LanguageModelTask(Task):
    """Options: batches_per_epoch (training batches between evaluations; None: as many windows as the
    training split has tokens), label_smoothing (of the next-token cross-entropy, in [0, 1)). Metric: bits
    per byte (`bpc`, lower is better)."""

    metric = "bpc"
    higher_is_better = False
    unit = "tokens"
    data_kind = "tokens"
    predicts = True

    def __init__(self, cfg: Any, batches_per_epoch: Optional[int] = None, label_smoothing: float = 0.1):
        super().__init__(cfg)
        if not isinstance(label_smoothing, (int, float)) or not 0 <= label_smoothing < 1:
            raise ConfigError(f"task.options.label_smoothing must be in [0, 1), got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)
        if batches_per_epoch is not None and (not isinstance(batches_per_epoch, int) or batches_per_epoch < 1):
            raise ConfigError(f"task.options.batches_per_epoch must be a positive integer or null, got {batches_per_epoch!r}")
        self.batches_per_epoch = batches_per_epoch

    def model_family(self, dataset):
        return ("lm", "language")

    def loaders(self, dataset: Any) -> Tuple[Any, Dict[str, Any]]:
        d, seed, L = self.cfg.data, self.cfg.run.seed, dataset.seq_len
        self.token_bytes = dataset.tokenizer.token_bytes().to(dataset.train.device)
        try:
            train = WindowLoader(dataset.train, d.batch_size, L, shuffle=True, seed=seed, steps=self.batches_per_epoch)
            evals = {s: WindowLoader(getattr(dataset, s), d.eval_batch_size, L, shuffle=False, seed=seed)
                     for s in ("val", "test")}
        except ValueError as e:
            raise ConfigError(f"{dataset.name}: {e}") from None
        return train, evals

    def loss(self, model: nn.Module) -> nn.Module:
        return NextTokenLoss(self.label_smoothing)

    def distill_logits(self, logits: Tensor) -> Tensor:
        return logits  # [B, N, vocab]: one distribution per token

    def units(self, target: Tensor) -> int:
        return target.numel()

    def eval_sums(self, logits: Tensor, y: Tensor) -> Dict[str, Tensor]:
        nll = F.cross_entropy(logits.float().flatten(0, -2), y.flatten(), reduction="sum").double()
        return {"nll": nll, "bytes": self.token_bytes[y].sum(), "n": torch.tensor(y.numel(), device=y.device)}

    def eval_metrics(self, s: Dict[str, float]) -> Dict[str, Any]:
        n = max(int(s["n"]), 1)
        loss = s["nll"] / n
        return {"loss": loss, "bpc": s["nll"] / LN2 / max(s["bytes"], 1.0), "ppl": math.exp(min(loss, 700.0)), "n": n}

    def format_metric(self, value: float) -> str:
        return f"bpc {value:.3f}"

    def format_metrics(self, rec: Dict[str, Any], prefix: str) -> str:
        if prefix == "train":  # bits per byte of the training loss (byte tokens, no label smoothing)
            return f"train loss {rec['train_loss']:.3f}"
        return super().format_metrics(rec, prefix)

    def headline(self, s: Dict[str, Any]) -> str:
        return (f"test {s['test_bpc']:.3f} bits per byte (validation {s['val_bpc']:.3f}), perplexity {s['test_ppl']:.2f}, "
                f"on {s['test_tokens']} {s['dataset']} test tokens " + self.run_facts(s))

    def eval_line(self, r: Dict[str, Any]) -> str:
        return (f"test {r['test_bpc']:.3f} bits per byte, validation {r['val_bpc']:.3f} "
                f"({r['test_tokens']} + {r['val_tokens']} tokens), test perplexity {r['test_ppl']:.2f}")
