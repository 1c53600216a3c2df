"""Scenes for dense prediction: images with boxes, class labels and per-pixel class maps (`SceneDataset`),
and `fashion_mnist_scenes`, a SYNTHETIC LAYOUT of real pixels that needs no download.

A `SceneDataset` holds each split as tensors:

    images [N, C, S, S] uint8          boxes  [N, M, 4] float32 (x0, y0, x1, y1) in pixels, M = most objects
    labels [N, M] int64 (-1: padding)  masks  [N, S, S] uint8: 0 background, k + 1 for class k, 255 ignore

`fashion_mnist_scenes` composes 1 to `max_objects` real Fashion-MNIST items per canvas (S x S, black),
each at a random scale (its 28 x 28 image resized to `scale` x 28, bilinear) and position fully inside
the canvas; an item covers the pixels where its resized intensity exceeds `threshold`, in drawing order.
A pixel covered by several items is labelled with the last; `occlusion` says what it shows: "opaque" (the
default) the last, so every label is the item seen; "max" (the default until 2026-11-28, the data of the
benchmarks recorded before then) the brightest of them, so on 13.4 % of the object pixels the label is
not the item the pixel shows and even an oracle that knows every class reaches only mIoU 0.80
(benchmarks/scene_overlap.py). Its box is the exact extent of its labelled pixels and its mask those
pixels; an item left with fewer than `min_visible` labelled pixels is dropped. Training scenes use Fashion-MNIST's
training images, test scenes its test images. The same seed gives the same scenes; they are built once
and cached (`paths.cache_dir()/scenes`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import sys
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from .paths import cache_dir, cache_key, cached_arrays
from .registry import DATASETS, create_dataset
from .emulated_dvs import emulate_events
from .fashion_mnist import FASHION_CLASSES

__all__ = ["SceneDataset", "compose_scenes", "draw_scene", "draw_scenes", "fashion_mnist_scenes", "FASHION_CLASSES", "TEST_SEED_OFFSET"]

TEST_SEED_OFFSET = 1_000_003  # the test split's scenes are drawn with seed + this, apart from the training split's


@dataclass(frozen=True)
class SceneDataset:
    """A dense-prediction dataset (see the module docstring). `frames` > 0: event frames instead of images,
    `images [N, frames, 2, S, S]` uint8 counts (time first once batched)."""

    name: str
    train_images: Tensor
    train_boxes: Tensor
    train_labels: Tensor
    train_masks: Tensor
    test_images: Tensor
    test_boxes: Tensor
    test_labels: Tensor
    test_masks: Tensor
    num_classes: int
    img_size: int
    in_chans: int
    class_names: Tuple[str, ...] = ()
    frames: int = 0

    kind = "scenes"  # what a task checks it can train on
    task = "detect"  # the default task (`task=segment` for the class maps)

    def __post_init__(self) -> None:
        S = self.img_size
        for split in ("train", "test"):
            im, bx, lb, mk = (getattr(self, f"{split}_{k}") for k in ("images", "boxes", "labels", "masks"))
            n = len(im)
            shape = (self.frames, 2, S, S) if self.frames else (self.in_chans, S, S)
            if im.dtype != torch.uint8 or tuple(im.shape[1:]) != shape:
                raise ConfigError(f"{self.name}: {split} images must be uint8 [N, {', '.join(map(str, shape))}], "
                                  f"got {im.dtype} {list(im.shape)}")
            if bx.shape[:1] != (n,) or bx.dim() != 3 or bx.shape[2] != 4 or lb.shape != bx.shape[:2]:
                raise ConfigError(f"{self.name}: {split} boxes must be [N, M, 4] with labels [N, M], got "
                                  f"{list(bx.shape)} and {list(lb.shape)}")
            if mk.dtype != torch.uint8 or tuple(mk.shape) != (n, S, S):
                raise ConfigError(f"{self.name}: {split} masks must be uint8 [N, {S}, {S}], got {mk.dtype} {list(mk.shape)}")
            valid = lb >= 0
            if valid.any():
                b = bx[valid]
                if (b[:, 2] <= b[:, 0]).any() or (b[:, 3] <= b[:, 1]).any():
                    raise ConfigError(f"{self.name}: a {split} box has zero or negative size")
                if (b < 0).any() or (b > S).any():
                    raise ConfigError(f"{self.name}: a {split} box lies outside the {S} x {S} image")
                if int(lb.max()) >= self.num_classes:
                    raise ConfigError(f"{self.name}: {split} labels must be in [0, {self.num_classes})")
            bad = (mk != 255) & (mk > self.num_classes)
            if bad.any():
                raise ConfigError(f"{self.name}: a {split} class map holds class {int(mk[bad].max()) - 1}, outside "
                                  f"[0, {self.num_classes}) (values: 0 background, k + 1 class k, 255 ignored)")

    def model_kwargs(self) -> Dict[str, Any]:
        kw: Dict[str, Any] = {"img_size": self.img_size, "in_chans": 2 if self.frames else self.in_chans,
                              "num_classes": self.num_classes}
        if self.frames:
            kw["T"] = self.frames
        return kw

    def to(self, device) -> "SceneDataset":
        return dataclasses.replace(self, **{f.name: getattr(self, f.name).to(device) for f in dataclasses.fields(self)
                                            if isinstance(getattr(self, f.name), Tensor)})

    def __repr__(self) -> str:
        return (f"SceneDataset({self.name!r}, train={len(self.train_images)}, test={len(self.test_images)}, "
                f"{self.img_size}x{self.img_size}, classes={self.num_classes}, device={self.train_images.device})")


@torch.no_grad()
def compose_scenes(items: Tensor, item_labels: Tensor, n: int, size: int, *, max_objects: int = 6,
                   scale: Tuple[float, float] = (0.7, 1.3), threshold: int = 40, min_visible: int = 20,
                   seed: int = 0, occlusion: str = "opaque") -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """`n` scenes of `size` x `size` from `items [K, 1, 28, 28]` uint8 with labels `[K]`: (images, boxes,
    labels, masks) as in the module docstring. Deterministic for a given `seed`."""
    _check_occlusion(occlusion)
    threads = torch.get_num_threads()
    # thousands of tiny ops, where extra threads only add overhead: with torch's default threads, 60,000
    # scenes took 3 min on a 64-core GPU host (a benchmark ran beside it); one thread here: 0.5 ms per
    # scene. Same results either way.
    torch.set_num_threads(1)
    try:
        return _compose(items, item_labels, n, size, max_objects, scale, threshold, min_visible, seed, occlusion)
    finally:
        torch.set_num_threads(threads)


def draw_scene(items: Tensor, picks: Tensor, size: int, scale: Tuple[float, float], threshold: int,
               g: torch.Generator, occlusion: str = "opaque") -> Tuple[Tensor, Tensor, Tensor]:
    """Draw `items[picks]` in order on one black canvas (module docstring): (canvas [S, S] float, owner [S, S]:
    the index in `picks` of the item a pixel is labelled with, -1 for background, shown [S, S]: the index of
    the item whose intensity the pixel shows). Where items overlap, owner is the later item; shown is the
    brighter one with occlusion "max" (the two then differ on some pixels: benchmarks/scene_overlap.py) and
    the later one with "opaque"."""
    side = items.shape[-1]
    canvas = torch.zeros(size, size)
    owner = torch.full((size, size), -1, dtype=torch.int64)
    shown = owner.clone()
    for j, k in enumerate(picks.tolist()):
        s = scale[0] + (scale[1] - scale[0]) * float(torch.rand((), generator=g))
        px = max(8, min(size, round(side * s)))
        img = F.interpolate(items[k : k + 1].float(), size=(px, px), mode="bilinear", align_corners=False)[0, 0]
        y0 = int(torch.randint(0, size - px + 1, (), generator=g))
        x0 = int(torch.randint(0, size - px + 1, (), generator=g))
        cover = img > threshold
        region = canvas[y0 : y0 + px, x0 : x0 + px]
        top = img if occlusion == "opaque" else torch.maximum(region, img)
        shown[y0 : y0 + px, x0 : x0 + px][cover & (top == img)] = j
        canvas[y0 : y0 + px, x0 : x0 + px] = torch.where(cover, top, region)
        owner[y0 : y0 + px, x0 : x0 + px][cover] = j
    return canvas, owner, shown


def _check_occlusion(occlusion: str) -> None:
    if occlusion not in ("max", "opaque"):
        raise ConfigError(f"fashion_mnist_scenes: occlusion must be 'max' or 'opaque', got {occlusion!r}")


def draw_scenes(items: Tensor, n: int, size: int, *, max_objects: int = 6, scale: Tuple[float, float] = (0.7, 1.3),
                threshold: int = 40, seed: int = 0,
                occlusion: str = "opaque") -> Iterator[Tuple[Tensor, Tensor, Tensor, Tensor]]:
    """The draws behind `compose_scenes`, scene by scene: (picks, the indices into `items` in drawing order,
    and `draw_scene`'s canvas, owner, shown). Same arguments, same order of random numbers."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(1, max_objects + 1, (n,), generator=g)
    for i in range(n):
        picks = torch.randint(0, len(items), (int(counts[i]),), generator=g)
        yield (picks,) + draw_scene(items, picks, size, scale, threshold, g, occlusion)


def _compose(items, item_labels, n, size, max_objects, scale, threshold, min_visible, seed, occlusion):
    images = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    masks = torch.zeros(n, size, size, dtype=torch.uint8)
    boxes = torch.zeros(n, max_objects, 4)
    labels = torch.full((n, max_objects), -1, dtype=torch.int64)
    draws = draw_scenes(items, n, size, max_objects=max_objects, scale=scale, threshold=threshold, seed=seed,
                        occlusion=occlusion)
    for i, (picks, canvas, owner, _) in enumerate(draws):
        slot = 0
        for j, k in enumerate(picks.tolist()):
            vis = owner == j
            if int(vis.sum()) < min_visible:
                continue
            ys, xs = torch.nonzero(vis, as_tuple=True)
            boxes[i, slot] = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
            labels[i, slot] = item_labels[k]
            masks[i][vis] = int(item_labels[k]) + 1
            slot += 1
        images[i, 0] = canvas.round().clamp(0, 255).to(torch.uint8)
    return images, boxes, labels, masks


@DATASETS.register("fashion_mnist_scenes", layout="scenes", kind="scenes", task="detect", num_classes=10, img_size=64,
                   in_chans=1)
def fashion_mnist_scenes(root: Optional[str] = None, *, size: int = 64, train: int = 12000, test: int = 1000,
                         max_objects: int = 6, scale_min: float = 0.7, scale_max: float = 1.3, seed: int = 0,
                         occlusion: str = "opaque", events: bool = False, frames: int = 4) -> SceneDataset:
    """SYNTHETIC multi-object scenes of real Fashion-MNIST items (module docstring); `events=True`: their
    EMULATED event-camera frames (`emulated_dvs`'s sensor: saccades, log-intensity thresholds), for
    event-based detection in the style of Gen1."""
    if not isinstance(size, int) or size < 32:
        raise ConfigError(f"fashion_mnist_scenes: size must be an integer >= 32, got {size!r}")
    if not 1 <= max_objects <= 16 or train < 1 or test < 1 or not 0 < scale_min <= scale_max:
        raise ConfigError("fashion_mnist_scenes: need 1 <= max_objects <= 16, train >= 1, test >= 1, "
                          "0 < scale_min <= scale_max")
    _check_occlusion(occlusion)
    src = create_dataset("fashion_mnist", root=root)
    opts: Dict[str, Any] = dict(max_objects=max_objects, scale=(scale_min, scale_max))
    if occlusion != "max":  # the "max" scenes keep the cache key they were built under
        opts["occlusion"] = occlusion
    digest = hashlib.sha256(src.train_x.numpy().tobytes()[:1 << 22] + src.test_x.numpy().tobytes()[:1 << 22]).hexdigest()
    key = cache_key(v=1, size=size, train=train, test=test, seed=seed, source=digest, **opts)

    cache = cache_dir() / "scenes" / f"fashion_mnist_scenes-{key}.npz"

    def build() -> Dict[str, np.ndarray]:
        # minutes for the recipes' tens of thousands of scenes (about 2.5 ms each) and hundreds of MB: say so
        mb = (train + test) * (size * size * 2 + max_objects * 24) / 1e6
        print(f"fashion_mnist_scenes: building {train + test:,} scenes once (about {(train + test) * 2.5e-3:.0f} s, "
              f"{mb:.0f} MB), cached in {cache}", file=sys.stderr, flush=True)
        tr = compose_scenes(src.train_x, src.train_y, train, size, seed=seed, **opts)
        te = compose_scenes(src.test_x, src.test_y, test, size, seed=seed + TEST_SEED_OFFSET, **opts)
        return {f"{split}_{k}": t.numpy() for split, ts in (("train", tr), ("test", te))
                for k, t in zip(("images", "boxes", "labels", "masks"), ts)}

    a = {k: torch.from_numpy(v) for k, v in cached_arrays(cache, build).items()}
    tr = tuple(a[f"train_{k}"] for k in ("images", "boxes", "labels", "masks"))
    te = tuple(a[f"test_{k}"] for k in ("images", "boxes", "labels", "masks"))
    kw: Dict[str, Any] = {}
    name = "fashion_mnist_scenes"
    if events:

        tr = (emulate_events(tr[0], frames),) + tr[1:]
        te = (emulate_events(te[0], frames),) + te[1:]
        kw["frames"], name = frames, "fashion_mnist_scenes (emulated events)"
    return SceneDataset(name, *tr, *te, num_classes=10, img_size=size, in_chans=1, class_names=FASHION_CLASSES, **kw)
