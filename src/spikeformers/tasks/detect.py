"""Object detection on scenes (`SceneDataset` boxes): the FCOS loss on the head's locations, and COCO
mAP@0.5 and mAP@0.5:0.95 from pycocotools on the decoded, NMS-filtered detections.

Loss (Tian et al., ICCV 2019): sigmoid focal loss over classes (alpha 0.25, gamma 2; Lin et al. 2017),
GIoU loss of the decoded boxes weighted by the centreness target, and binary cross-entropy of the
centreness, each normalised by the number of positive locations. Level i of stride s_i takes the
boxes whose largest distance from a location lies in [r s_(i-1), r s_i) (first level from 0, last to
infinity; r = `range_per_stride`), with centre sampling (`fcos_targets`).

Decoding: score = sqrt(sigmoid(class) sigmoid(centreness)); the `pre_nms` (200) best (location, class)
pairs above `score_threshold` go through greedy per-class NMS at `nms_iou`; the best `max_detections`
remain.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .base import Task, autocast, reduce_rates
from .boxes import box_iou, decode_ltrb, fcos_points, fcos_targets, giou_loss, greedy_nms
from .coco_eval import coco_box_metrics
from .registry import register_task
from .scenes import scene_loaders
from ..neurons.monitor import FiringRateMonitor

__all__ = ["DetectionTask", "FCOSLoss", "decode_detections"]


def level_ranges(strides: List[int], range_per_stride: float, device=None) -> Tuple[Tensor, Tensor]:
    lo = [0.0] + [range_per_stride * s for s in strides[:-1]]
    hi = [range_per_stride * s for s in strides[:-1]] + [float("inf")]
    return torch.tensor(lo, device=device), torch.tensor(hi, device=device)


class FCOSLoss(nn.Module):
    """`loss(out, target)`: out {"cls", "box", "ctr"} of `SpikingFCOSHead`, target a SceneLoader batch."""
    per_step = False

    def __init__(self, sizes, strides: List[int], range_per_stride: float = 2.0, radius: float = 1.5,
                 alpha: float = 0.25, gamma: float = 2.0):
        super().__init__()
        points, st = fcos_points(sizes, strides)
        lo, hi = level_ranges(list(strides), range_per_stride)
        per_level = torch.cat([torch.full((h * w,), i) for i, (h, w) in enumerate(sizes)])
        self.register_buffer("points", points, persistent=False)
        self.register_buffer("strides", st, persistent=False)
        self.register_buffer("ranges", torch.stack([lo[per_level], hi[per_level]], -1), persistent=False)
        self.radius, self.alpha, self.gamma = radius, alpha, gamma

    def forward(self, out: Dict[str, Tensor], target: Dict[str, Tensor]) -> Tensor:
        dev = out["cls"].device
        points, strides, ranges = self.points.to(dev), self.strides.to(dev), self.ranges.to(dev)
        label, ltrb, ctr = fcos_targets(points, strides, target["boxes"], target["labels"], ranges, self.radius)
        pos = label >= 0
        n_pos = pos.sum().clamp_min(1).float()
        classes = torch.arange(out["cls"].shape[-1], device=dev)
        onehot = (label[..., None] == classes).float()  # [B, L, K]; all zero on background (label -1)
        p = out["cls"].sigmoid()
        ce = F.binary_cross_entropy_with_logits(out["cls"], onehot, reduction="none")
        p_t = p * onehot + (1 - p) * (1 - onehot)
        a_t = self.alpha * onehot + (1 - self.alpha) * (1 - onehot)
        cls_loss = (a_t * (1 - p_t) ** self.gamma * ce).sum() / n_pos
        w = ctr * pos
        pred_boxes, true_boxes = decode_ltrb(points, out["box"]), decode_ltrb(points, ltrb)
        box_loss = (giou_loss(pred_boxes, true_boxes) * w).sum() / w.sum().clamp_min(1e-6)
        ctr_loss = (F.binary_cross_entropy_with_logits(out["ctr"], ctr, reduction="none") * pos).sum() / n_pos
        return cls_loss + box_loss + ctr_loss


@torch.no_grad()
def decode_detections(out: Dict[str, Tensor], points: Tensor, score_threshold: float = 0.05, nms_iou: float = 0.6,
                      pre_nms: int = 200, max_detections: int = 100, size: int = 0) -> List[Tuple[Tensor, Tensor, Tensor]]:
    """Per image (boxes [K, 4], scores [K], labels [K]) on the CPU (see the module docstring); the whole
    batch is decoded and suppressed on its own device."""
    scores = (out["cls"].float().sigmoid() * out["ctr"].float().sigmoid()[..., None]).sqrt()  # [B, L, C]
    boxes = decode_ltrb(points.to(out["box"].device), out["box"].float())
    if size:
        boxes = boxes.clamp(0, size)
    B, L, C = scores.shape
    top, idx = scores.reshape(B, L * C).topk(min(pre_nms, L * C), dim=1)  # sorted by decreasing score
    loc, cls = idx // C, idx % C
    bb = boxes.gather(1, loc[..., None].expand(-1, -1, 4))  # [B, K, 4]
    overlap = (box_iou(bb, bb) > nms_iou) & (cls[:, :, None] == cls[:, None, :])
    keep = greedy_nms(overlap, top > score_threshold)
    keep &= keep.cumsum(1) <= max_detections
    keep, bb, top, cls = keep.cpu(), bb.cpu(), top.cpu(), cls.cpu()
    return [(bb[i][keep[i]], top[i][keep[i]], cls[i][keep[i]]) for i in range(B)]


@register_task("detect")
class DetectionTask(Task):
    """Options: range_per_stride (2), center_radius (1.5), score_threshold (0.05), nms_iou (0.6),
    max_detections (100). Metric: COCO mAP@0.5 (`map50`); mAP@0.5:0.95 (`map`) beside it."""

    metric = "map50"
    higher_is_better = True
    unit = "images"
    data_kind = "scenes"
    distill_kind = "sigmoid"  # FCOS scores each class on its own

    def __init__(self, cfg: Any, range_per_stride: float = 2.0, center_radius: float = 1.5, score_threshold: float = 0.05,
                 nms_iou: float = 0.6, max_detections: int = 100):
        super().__init__(cfg)
        if not (range_per_stride > 0 and center_radius > 0 and 0 <= score_threshold < 1 and 0 < nms_iou <= 1
                and max_detections >= 1):
            raise ConfigError("task.options: need range_per_stride > 0, center_radius > 0, score_threshold in [0, 1), "
                              "nms_iou in (0, 1], max_detections >= 1")
        self.range_per_stride, self.center_radius = float(range_per_stride), float(center_radius)
        self.score_threshold, self.nms_iou, self.max_detections = float(score_threshold), float(nms_iou), int(max_detections)

    def model_family(self, dataset):
        return ("dense", "dense-prediction")

    def loaders(self, dataset: Any) -> Tuple[Any, Dict[str, Any]]:
        self.num_classes, self.img_size = dataset.num_classes, dataset.img_size
        return scene_loaders(self.cfg, dataset)

    def _layout(self, model: nn.Module):
        m = getattr(model, "module", model)  # DDP
        if not hasattr(m, "level_sizes"):
            raise ConfigError(f"task 'detect' needs a detector model (e.g. fcos_detector), got {type(m).__name__}")
        return m.level_sizes(), m.strides

    def loss(self, model: nn.Module) -> nn.Module:
        sizes, strides = self._layout(model)
        return FCOSLoss(sizes, strides, self.range_per_stride, self.center_radius)

    def distill_logits(self, out: Dict[str, Tensor]) -> Tensor:
        return out["cls"]  # [B, locations, classes] sigmoid logits; boxes and centreness are not distilled

    def units(self, target: Dict[str, Tensor]) -> int:
        return int(target["labels"].shape[0])

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader: Any, amp, monitor: bool = False, dist: Any = None) -> Dict[str, Any]:
        model.eval()
        sizes, strides = self._layout(model)
        points = fcos_points(sizes, strides)[0]
        loss_fn = FCOSLoss(sizes, strides, self.range_per_stride, self.center_radius)
        gts, dets, loss_sum, n = [], [], 0.0, 0
        mon = FiringRateMonitor(model) if monitor else None
        with (mon if mon else nullcontext()), autocast(loader.device, amp):
            forward = self.inference(model)
            for x, y in loader:
                out = forward(x)
                loss_sum += float(loss_fn({k: v.float() for k, v in out.items()}, y)) * y["labels"].shape[0]
                n += y["labels"].shape[0]
                dets += decode_detections(out, points, self.score_threshold, self.nms_iou,
                                          max_detections=self.max_detections, size=self.img_size)
                for b, l in zip(y["boxes"].cpu(), y["labels"].cpu()):
                    gts.append((b[l >= 0], l[l >= 0]))
        if dist is not None and dist.world_size > 1:  # COCO's metric is not a sum: gather every image
            gts, dets, loss_sum, n = dist.gather_objects((gts, dets, loss_sum, n))
        m = coco_box_metrics(gts, dets, self.num_classes, (self.img_size, self.img_size))
        res = {"loss": loss_sum / max(n, 1), "map50": m["map50"], "map": m["map"], "map75": m["map75"], "n": n}
        if mon:
            res.update(reduce_rates(mon, dist, loader.device))
        return res

    def format_metric(self, value: float) -> str:
        return f"mAP@0.5 {100 * value:.2f}%"

    def headline(self, s: Dict[str, Any]) -> str:
        return (f"test mAP@0.5 {100 * s['test_map50']:.2f}%, mAP@0.5:0.95 {100 * s['test_map']:.2f}% (COCO evaluator) on "
                f"{s['test_images']} {s['dataset']} test images " + self.run_facts(s))

    def eval_line(self, r: Dict[str, Any]) -> str:
        return f"test mAP@0.5 {100 * r['test_map50']:.2f}%, mAP@0.5:0.95 {100 * r['test_map']:.2f}% ({r['test_images']} images)"
