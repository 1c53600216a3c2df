"""Classification of images, event frames and sequences (`ArrayDataset`): cross-entropy with label
smoothing, mixup/cutmix and TET (`classify_loss.py`), top-1 accuracy."""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Augment, BatchMix, DeviceLoader
from ..errors import ConfigError
from .base import Task
from .classify_loss import ClassificationLoss
from .registry import register_task

__all__ = ["ClassificationTask"]


@register_task("classify")
class ClassificationTask(Task):
    """Options (`task.options`): the loss and its batch mixing.

        label_smoothing: cross-entropy label smoothing (hard and soft targets alike), in [0, 1).
        mixup, cutmix: Beta(a, a) parameters of mixup / cutmix (0: off; cutmix: images and event frames only).
        mix_prob: probability that a batch is mixed when mixup or cutmix is on.
        mix_switch_prob: with both on, probability of cutmix rather than mixup for a batch.
        mix_off_epoch: stop mixing from this epoch on (0-based; None: never).
        tet, tet_lambda, tet_means: the TET loss (Deng et al., ICLR 2022) over per-step logits, its MSE
            regulariser's weight and target (`classify_loss.py`).

    Metric: top-1 accuracy (`acc`).
    """

    metric = "acc"
    higher_is_better = True
    unit = "images"
    data_kind = "array"
    predicts = True
    exports_onnx = True

    def __init__(self, cfg: Any, label_smoothing: float = 0.1, mixup: float = 0.0, cutmix: float = 0.0,
                 mix_prob: float = 1.0, mix_switch_prob: float = 0.5, mix_off_epoch: Optional[int] = None,
                 tet: bool = False, tet_lambda: float = 0.001, tet_means: float = 1.0):
        super().__init__(cfg)
        checks = {"mixup": (mixup, mixup >= 0, ">= 0"), "cutmix": (cutmix, cutmix >= 0, ">= 0"),
                  "mix_prob": (mix_prob, 0 <= mix_prob <= 1, "in [0, 1]"),
                  "mix_switch_prob": (mix_switch_prob, 0 <= mix_switch_prob <= 1, "in [0, 1]"),
                  "mix_off_epoch": (mix_off_epoch, mix_off_epoch is None or (isinstance(mix_off_epoch, int)
                                                                             and mix_off_epoch >= 0), ">= 0 or null"),
                  "tet": (tet, isinstance(tet, bool), "true or false")}
        for k, (v, ok, want) in checks.items():
            if not ok:
                raise ConfigError(f"task.options.{k} must be {want}, got {v!r}")
        try:
            self.criterion = ClassificationLoss(float(label_smoothing), tet=tet, tet_lambda=float(tet_lambda),
                                                tet_means=float(tet_means))
        except ValueError as e:
            raise ConfigError(f"task.options: {e}") from None
        self.mix = dict(mixup=float(mixup), cutmix=float(cutmix), prob=float(mix_prob),
                        switch_prob=float(mix_switch_prob), off_epoch=mix_off_epoch)

    def model_family(self, dataset):
        return ("spikformer_seq", "sequence") if getattr(dataset, "layout", None) == "sequence" else None

    def loaders(self, dataset: Any) -> Tuple[Any, Dict[str, Any]]:
        cfg = self.cfg
        d = cfg.data
        try:
            aug = Augment.for_dataset(dataset, crop_padding=d.crop_padding, flip=d.flip, erasing=d.erasing)
            mix = BatchMix(dataset.num_classes, spatial=dataset.spec.spatial, **self.mix)
        except ValueError as e:
            raise ConfigError(f"{dataset.name}: {e}") from None
        train = DeviceLoader(dataset.train_x, dataset.train_y, d.batch_size, shuffle=True, augment=aug,
                             seed=cfg.run.seed, drop_last=True, layout=dataset.layout, mix=mix)
        return train, {"test": self.eval_loader(dataset, dataset.test_x, dataset.test_y)}

    def eval_loader(self, dataset: Any, x: Tensor, y: Tensor):
        return DeviceLoader(x, y, self.cfg.data.eval_batch_size, shuffle=False, augment=None, seed=self.cfg.run.seed,
                            layout=dataset.layout)

    def loss(self, model: nn.Module) -> nn.Module:
        return self.criterion

    def distill_logits(self, logits: Tensor) -> Tensor:
        return logits  # [B, classes]

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
