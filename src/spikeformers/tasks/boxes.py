"""Boxes in torch (torchvision is not available with the CPU build): IoU, GIoU, FCOS box coding and
target assignment, greedy batched NMS. Boxes are (x0, y0, x1, y1) in pixels."""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
from torch import Tensor

__all__ = ["box_area", "box_iou", "giou_loss", "fcos_points", "fcos_targets", "decode_ltrb", "greedy_nms", "batched_nms"]


def box_area(b: Tensor) -> Tensor:
    return (b[..., 2] - b[..., 0]).clamp_min(0) * (b[..., 3] - b[..., 1]).clamp_min(0)


def _wh_area(wh: Tensor) -> Tensor:
    """Width x height of `[..., 2]` extents (not `.prod`: its backward looks for zeros with a host sync,
    which a CUDA graph capture forbids)."""
    wh = wh.clamp_min(0)
    return wh[..., 0] * wh[..., 1]


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise IoU `[..., N, M]` of `a [..., N, 4]` and `b [..., M, 4]`."""
    lt = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])
    rb = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    inter = _wh_area(rb - lt)
    return inter / (box_area(a)[..., :, None] + box_area(b)[..., None, :] - inter).clamp_min(1e-9)


def giou_loss(a: Tensor, b: Tensor) -> Tensor:
    """1 - GIoU of matching boxes `a`, `b` `[..., 4]` (Rezatofighi et al., CVPR 2019), elementwise."""
    lt, rb = torch.maximum(a[..., :2], b[..., :2]), torch.minimum(a[..., 2:], b[..., 2:])
    inter = _wh_area(rb - lt)
    union = (box_area(a) + box_area(b) - inter).clamp_min(1e-9)
    hull = _wh_area(torch.maximum(a[..., 2:], b[..., 2:]) - torch.minimum(a[..., :2], b[..., :2]))
    return 1 - (inter / union - (hull - union) / hull.clamp_min(1e-9))


def fcos_points(sizes: Sequence[Tuple[int, int]], strides: Sequence[int], device=None) -> Tuple[Tensor, Tensor]:
    """Centres `[L, 2]` (x, y) of every location of every level (row-major, finest first) and their strides `[L]`."""
    pts, st = [], []
    for (h, w), s in zip(sizes, strides):
        ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        pts.append(torch.stack([xs, ys], -1).reshape(-1, 2).float() * s + s / 2)
        st.append(torch.full((h * w,), float(s), device=device))
    return torch.cat(pts), torch.cat(st)


def decode_ltrb(points: Tensor, ltrb: Tensor) -> Tensor:
    """Boxes from distances (left, top, right, bottom) `[..., L, 4]` to each point `[L, 2]`."""
    return torch.cat([points - ltrb[..., :2], points + ltrb[..., 2:]], -1)


def fcos_targets(points: Tensor, strides: Tensor, boxes: Tensor, labels: Tensor, ranges: Tensor,
                 radius: float = 1.5) -> Tuple[Tensor, Tensor, Tensor]:
    """FCOS assignment (Tian et al., ICCV 2019), with centre sampling.

    A location is positive for a box when it lies in the box and within `radius` strides of its centre,
    and the box's largest distance from it falls in the location's level range `ranges [L, 2]`; among
    several boxes the smallest wins. Args: points [L, 2], strides [L], boxes [B, M, 4], labels [B, M]
    (-1 padding). Returns: matched label [B, L] (-1 background), target distances [B, L, 4] and the
    centreness target [B, L] (0 on background).
    """
    x, y = points[None, :, None, 0], points[None, :, None, 1]  # [1, L, 1]
    b = boxes[:, None]  # [B, 1, M, 4]
    ltrb = torch.stack([x - b[..., 0], y - b[..., 1], b[..., 2] - x, b[..., 3] - y], -1)  # [B, L, M, 4]
    inside = ltrb.min(-1).values > 0
    cx, cy = (b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2
    r = radius * strides[None, :, None]
    central = ((x - cx).abs() < r) & ((y - cy).abs() < r)
    reach = ltrb.max(-1).values
    in_range = (reach >= ranges[None, :, None, 0]) & (reach <= ranges[None, :, None, 1])
    ok = inside & central & in_range & (labels[:, None, :] >= 0)
    area = torch.where(ok, box_area(b).expand_as(ok), torch.full_like(reach, float("inf")))
    best = area.argmin(-1)  # [B, L]
    pos = ok.gather(-1, best[..., None])[..., 0]
    target = ltrb.gather(2, best[..., None, None].expand(-1, -1, 1, 4))[:, :, 0]  # [B, L, 4]
    label = torch.where(pos, labels.gather(1, best), torch.full_like(best, -1))
    lr, tb = target[..., 0::2], target[..., 1::2]
    ctr = torch.sqrt((lr.min(-1).values / lr.max(-1).values.clamp_min(1e-9)).clamp_min(0)
                     * (tb.min(-1).values / tb.max(-1).values.clamp_min(1e-9)).clamp_min(0))
    return label, target, torch.where(pos, ctr, torch.zeros_like(ctr))


def greedy_nms(overlap: Tensor, valid: Tensor) -> Tensor:
    """Greedy non-maximum suppression of candidates already sorted by decreasing score, for a batch at once.

    overlap [B, K, K] bool (i suppresses j when overlap[i, j]), valid [B, K] bool (candidates that take
    part) -> keep [B, K] bool: a valid candidate is kept unless an earlier kept one suppresses it. K steps
    of a few batched operations, so a whole evaluation batch runs on the GPU without host round trips."""
    keep = torch.zeros_like(valid)
    suppressed = ~valid
    for i in range(valid.shape[1]):
        k = ~suppressed[:, i]
        keep[:, i] = k
        suppressed = suppressed | (overlap[:, i] & k[:, None])
    return keep


def batched_nms(boxes: Tensor, scores: Tensor, classes: Tensor, iou_threshold: float) -> Tensor:
    """Indices of the boxes greedy non-maximum suppression keeps, per class, by decreasing score.

    A box is dropped when a kept box of the same class with a higher score overlaps it with IoU above
    `iou_threshold`. One image; `greedy_nms` does a batch."""
    order = scores.argsort(descending=True)
    b, c = boxes[order], classes[order]
    overlap = (box_iou(b, b) > iou_threshold) & (c[:, None] == c[None, :])
    keep = greedy_nms(overlap[None], torch.ones(1, len(order), dtype=torch.bool, device=boxes.device))[0]
    return order[keep]
