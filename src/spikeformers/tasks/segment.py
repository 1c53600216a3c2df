"""Semantic segmentation of scenes (`SceneDataset` class maps): per-pixel cross-entropy, and mIoU and pixel
accuracy from one confusion matrix.

The class maps hold 0 for background, k + 1 for class k and 255 for pixels to ignore. mIoU is the mean
over the classes that occur (in the ground truth or the predictions) of TP / (TP + FP + FN), background
included; pixel accuracy is the confusion matrix's trace over its sum. Both come from the one
(classes + 1)^2 confusion matrix summed over the split (and over ranks).
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Task
from .registry import register_task
from .scenes import scene_loaders

__all__ = ["SegmentationTask", "SegmentationLoss", "confusion_matrix", "segmentation_metrics"]


class SegmentationLoss(nn.Module):
    per_step = False

    def forward(self, logits: Tensor, target: Dict[str, Tensor]) -> Tensor:
        return F.cross_entropy(logits, target["masks"], ignore_index=255)


def confusion_matrix(pred: Tensor, truth: Tensor, k: int) -> Tensor:
    """[k, k] counts of (true class, predicted class) over the pixels whose truth is not 255."""
    keep = truth != 255
    idx = truth[keep] * k + pred[keep]
    return torch.bincount(idx, minlength=k * k).view(k, k)


def segmentation_metrics(cm: Tensor) -> Dict[str, Any]:
    """mIoU (mean over classes that occur), per-class IoU and pixel accuracy from a confusion matrix."""
    cm = cm.double()
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    present = union > 0
    iou = torch.where(present, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))
    return {"miou": float(iou[present].mean()) if present.any() else 0.0,
            "pixel_acc": float(tp.sum() / cm.sum().clamp_min(1)), "iou": [None if v != v else float(v) for v in iou]}


@register_task("segment")
class SegmentationTask(Task):
    """Options: none (augmentation: data.flip, data.crop_padding as the largest shift). Metric: mIoU."""

    metric = "miou"
    higher_is_better = True
    unit = "images"
    data_kind = "scenes"

    def model_family(self, dataset):
        return ("dense", "dense-prediction")

    def loaders(self, dataset: Any) -> Tuple[Any, Dict[str, Any]]:
        self.num_outputs = dataset.num_classes + 1
        return scene_loaders(self.cfg, dataset)

    def loss(self, model: nn.Module) -> nn.Module:
        return SegmentationLoss()

    def distill_logits(self, logits: Tensor) -> Tensor:
        return logits.movedim(1, -1)  # [B, classes + 1, H, W] -> one distribution per pixel (ignored ones too)

    def units(self, target: Dict[str, Tensor]) -> int:
        return int(target["masks"].shape[0])

    def eval_sums(self, logits: Tensor, target: Dict[str, Tensor]) -> Dict[str, Tensor]:
        logits, masks = logits.float(), target["masks"]
        loss = F.cross_entropy(logits, masks, ignore_index=255, reduction="sum").double()
        return {"loss": loss, "pixels": (masks != 255).sum(), "n": torch.tensor(masks.shape[0], device=masks.device),
                "confusion": confusion_matrix(logits.argmax(1), masks, logits.shape[1])}

    def eval_metrics(self, s: Dict[str, Any]) -> Dict[str, Any]:
        m = segmentation_metrics(s["confusion"])
        return {"loss": s["loss"] / max(s["pixels"], 1.0), "miou": m["miou"], "pixel_acc": m["pixel_acc"],
                "class_iou": m["iou"], "n": int(s["n"])}

    def format_metric(self, value: float) -> str:
        return f"mIoU {100 * value:.2f}%"

    def headline(self, s: Dict[str, Any]) -> str:
        return (f"test mIoU {100 * s['test_miou']:.2f}% (background included), pixel accuracy "
                f"{100 * s['test_pixel_acc']:.2f}%, on {s['test_images']} {s['dataset']} test images " + self.run_facts(s))

    def eval_line(self, r: Dict[str, Any]) -> str:
        return (f"test mIoU {100 * r['test_miou']:.2f}%, pixel accuracy {100 * r['test_pixel_acc']:.2f}% "
                f"({r['test_images']} images)")
