"""COCO box metrics through the evaluator the field trusts: pycocotools' COCOeval (faster-coco-eval
gives the same numbers). Ground truth and detections are handed over in memory in COCO's format.

    m = coco_box_metrics(gts, dets, num_classes)   # {"map": mAP@[.5:.95], "map50": mAP@.5, "map75": ...}

gts: one (boxes [M, 4] x0 y0 x1 y1, labels [M]) per image; dets: one (boxes [K, 4], scores [K],
labels [K]) per image, as tensors or arrays. Categories are 1..num_classes (label + 1).
"""
from __future__ import annotations

import contextlib
import io
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

__all__ = ["coco_box_metrics", "COCO_STATS"]

#: the twelve numbers COCOeval.summarize() prints, in its order
COCO_STATS = ("map", "map50", "map75", "map_small", "map_medium", "map_large", "mar1", "mar10", "mar100",
              "mar_small", "mar_medium", "mar_large")


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def coco_box_metrics(gts: Sequence[Tuple[Any, Any]], dets: Sequence[Tuple[Any, Any, Any]], num_classes: int,
                     image_size: Tuple[int, int] = (0, 0)) -> Dict[str, float]:
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise ImportError("detection metrics need pycocotools: pip install pycocotools") from None
    images, anns = [], []
    for i, (boxes, labels) in enumerate(gts):
        images.append({"id": i + 1, "width": image_size[1], "height": image_size[0]})
        for b, c in zip(_np(boxes).reshape(-1, 4), _np(labels).reshape(-1)):
            w, h = float(b[2] - b[0]), float(b[3] - b[1])
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(c) + 1, "iscrowd": 0,
                         "bbox": [float(b[0]), float(b[1]), w, h], "area": w * h})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns,
                  "categories": [{"id": k + 1, "name": str(k)} for k in range(num_classes)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    results: List[Dict[str, Any]] = []
    for i, (boxes, scores, labels) in enumerate(dets):
        for b, s, c in zip(_np(boxes).reshape(-1, 4), _np(scores).reshape(-1), _np(labels).reshape(-1)):
            results.append({"image_id": i + 1, "category_id": int(c) + 1, "score": float(s),
                            "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]})
    if not anns or not results:
        return {k: 0.0 for k in COCO_STATS}
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: max(0.0, float(v)) for k, v in zip(COCO_STATS, ev.stats)}  # -1 (no such objects) -> 0
