"""Classification of images, event frames and sequences (`ArrayDataset`): cross-entropy with label
smoothing, mixup/cutmix and TET (`train/loss.py`), top-1 accuracy."""
from __future__ import annotations

from typing import Any, Dict, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .base import Task
from .registry import register_task

__all__ = ["ClassificationTask"]


@register_task("classify")
class ClassificationTask(Task):
    """Options: none. Metric: top-1 accuracy (`acc`)."""

    metric = "acc"
    higher_is_better = True
    unit = "images"
    data_kind = "array"

    def loaders(self, dataset: Any) -> Tuple[Any, Dict[str, Any]]:
        from ..data import Augment, BatchMix, DeviceLoader

        cfg = self.cfg
        d, o = cfg.data, cfg.optim
        try:
            aug = Augment.for_dataset(dataset, crop_padding=d.crop_padding, flip=d.flip, erasing=d.erasing)
            mix = BatchMix(dataset.num_classes, mixup=o.mixup, cutmix=o.cutmix, prob=o.mix_prob,
                           switch_prob=o.mix_switch_prob, off_epoch=o.mix_off_epoch, spatial=dataset.spec.spatial)
        except ValueError as e:
            raise ConfigError(f"{dataset.name}: {e}") from None
        train = DeviceLoader(dataset.train_x, dataset.train_y, d.batch_size, shuffle=True, augment=aug,
                             seed=cfg.run.seed, drop_last=True, layout=dataset.layout, mix=mix)
        return train, {"test": self.eval_loader(dataset, dataset.test_x, dataset.test_y)}

    def eval_loader(self, dataset: Any, x: Tensor, y: Tensor):
        from ..data import DeviceLoader

        return DeviceLoader(x, y, self.cfg.data.eval_batch_size, shuffle=False, augment=None, seed=self.cfg.run.seed,
                            layout=dataset.layout)

    def loss(self, model: nn.Module) -> nn.Module:
        from ..train.loss import create_loss

        return create_loss(self.cfg)

    def train_stats(self, logits: Tensor, target: Tensor) -> Dict[str, Tensor]:
        labels = target if target.dim() == 1 else target.argmax(1)  # soft targets: their top class
        return {"acc": (logits.argmax(1) == labels).sum()}

    def eval_sums(self, logits: Tensor, y: Tensor) -> Dict[str, Tensor]:
        logits = logits.float()
        return {"loss": F.cross_entropy(logits, y, reduction="sum").double(), "correct": (logits.argmax(1) == y).sum(),
                "n": torch.tensor(y.numel(), device=y.device)}

    def eval_metrics(self, s: Dict[str, float]) -> Dict[str, Any]:
        n = int(s["n"])
        return {"loss": s["loss"] / max(n, 1), "acc": s["correct"] / max(n, 1), "n": n}

    def format_metric(self, value: float) -> str:
        return f"acc {100 * value:.2f}%"

    def headline(self, s: Dict[str, Any]) -> str:
        return f"test accuracy {100 * s['test_acc']:.2f}% on {s['test_images']} {s['dataset']} test images " \
            + self.run_facts(s)

    def eval_line(self, r: Dict[str, Any]) -> str:
        return f"test accuracy {100 * r['test_acc']:.2f}% ({r['test_images']} images), test loss {r['test_loss']:.4f}"
