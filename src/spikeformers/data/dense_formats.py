"""Readers for the dense-prediction formats users have, each giving a `SceneDataset` resized to a square
`size` (images grey or RGB; boxes scaled; class maps nearest-neighbour):

    coco         COCO JSON: `root/annotations/instances_{train,val}.json` + `root/{train,val}/` images; boxes,
                 and per-pixel class maps drawn from polygon or RLE masks (pycocotools), crowd regions ignored
    voc          Pascal VOC: `root/Annotations/*.xml` (boxes), `root/SegmentationClass/*.png` (class maps,
                 palette indices; 255 ignored), `root/JPEGImages/`, `root/ImageSets/Main/{train,val}.txt`
    label_maps   ADE20K/Cityscapes style: `root/{train,val}/images/*` + `root/{train,val}/labels/*.png`
                 (class index per pixel; `ignore_index` -> ignored), no boxes

Class maps store 0 for background, k + 1 for class k and 255 for ignored pixels. Bad input names the
file: an annotation that references a missing image, a box outside its image or of zero or negative
size, a label map with a class outside [0, num_classes).
"""
from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DatasetError
from .registry import DATASETS
from .scenes import SceneDataset

__all__ = ["read_coco", "read_voc", "read_label_maps", "VOC_CLASSES"]

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")


def _load_image(path: Path, channels: int) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise DatasetError(f"image {path} does not exist")
    with Image.open(path) as im:
        return np.array(im.convert("L" if channels == 1 else "RGB"))


def _load_png(path: Path) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise DatasetError(f"label map {path} does not exist")
    with Image.open(path) as im:
        if im.mode not in ("L", "P", "I", "I;16"):
            raise DatasetError(f"{path}: a label map must be a single-channel PNG (mode L, P or I), got mode {im.mode}")
        return np.array(im).astype(np.int64)


def _check_boxes(boxes: np.ndarray, w: int, h: int, where: str) -> None:
    for b in boxes:
        if b[2] <= b[0] or b[3] <= b[1]:
            raise DatasetError(f"{where}: box {b.tolist()} has zero or negative size")
        if b[0] < 0 or b[1] < 0 or b[2] > w + 1e-6 or b[3] > h + 1e-6:
            raise DatasetError(f"{where}: box {b.tolist()} lies outside the {w} x {h} image")


def _resize(samples: List[Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], size: int, channels: int):
    """(images [N, C, S, S] uint8, boxes [N, M, 4], labels [N, M], masks [N, S, S] uint8) from samples of
    (image HxW(xC), boxes [k, 4] in pixels, labels [k], class map HxW)."""
    n, m = len(samples), max([len(s[2]) for s in samples] + [1])
    images = torch.zeros(n, channels, size, size, dtype=torch.uint8)
    boxes, labels = torch.zeros(n, m, 4), torch.full((n, m), -1, dtype=torch.int64)
    masks = torch.zeros(n, size, size, dtype=torch.uint8)
    for i, (img, bx, lb, mk) in enumerate(samples):
        h, w = img.shape[:2]
        t = torch.from_numpy(np.ascontiguousarray(img)).float()
        t = t[None, None] if t.dim() == 2 else t.permute(2, 0, 1)[None]
        images[i] = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)
        mt = torch.from_numpy(np.ascontiguousarray(mk)).float()[None, None]
        masks[i] = F.interpolate(mt, size=(size, size), mode="nearest")[0, 0].to(torch.uint8)
        if len(lb):
            scale = torch.tensor([size / w, size / h, size / w, size / h])
            boxes[i, :len(lb)] = torch.from_numpy(np.asarray(bx, dtype=np.float32)) * scale
            labels[i, :len(lb)] = torch.from_numpy(np.asarray(lb, dtype=np.int64))
    return images, boxes, labels, masks


def read_coco(ann_file: str, image_dir: str, *, channels: int = 3) -> Tuple[List, List[str]]:
    """Samples (image, boxes, labels, class map) of a COCO instances file; class names by category order."""
    try:
        from pycocotools import mask as mask_utils
    except ImportError:
        raise DatasetError("reading COCO annotations needs pycocotools: pip install pycocotools") from None
    try:
        with open(ann_file, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        raise DatasetError(f"{ann_file}: cannot read COCO annotations ({e})") from None
    cats = sorted(c["id"] for c in d.get("categories", []))
    index = {c: k for k, c in enumerate(cats)}
    names = [next(c["name"] for c in d["categories"] if c["id"] == cid) for cid in cats]
    images = {im["id"]: im for im in d.get("images", [])}
    anns: Dict[int, List] = {i: [] for i in images}
    for a in d.get("annotations", []):
        if a.get("image_id") not in images:
            raise DatasetError(f"{ann_file}: annotation {a.get('id')} references image {a.get('image_id')}, which is not "
                               f"in its images list")
        if a.get("category_id") not in index:
            raise DatasetError(f"{ann_file}: annotation {a.get('id')} has unknown category {a.get('category_id')}")
        anns[a["image_id"]].append(a)
    samples = []
    for iid, im in images.items():
        path = Path(image_dir) / im["file_name"]
        if not path.is_file():
            raise DatasetError(f"{ann_file}: image {im['file_name']} (id {iid}) is missing from {image_dir}")
        img = _load_image(path, channels)
        h, w = img.shape[:2]
        cmap = np.zeros((h, w), dtype=np.int64)
        bx, lb = [], []
        for a in anns[iid]:
            x, y, bw, bh = a["bbox"]
            box = np.array([x, y, x + bw, y + bh], dtype=np.float64)
            _check_boxes(box[None], w, h, f"{ann_file}: annotation {a.get('id')}")
            seg = a.get("segmentation")
            if seg:
                if isinstance(seg, list):  # polygons
                    rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
                elif isinstance(seg.get("counts"), list):  # uncompressed RLE
                    rle = mask_utils.frPyObjects(seg, h, w)
                else:
                    rle = seg
                m = mask_utils.decode(rle).astype(bool)
                cmap[m] = 255 if a.get("iscrowd") else index[a["category_id"]] + 1
            if not a.get("iscrowd"):
                bx.append(box)
                lb.append(index[a["category_id"]])
        samples.append((img, np.array(bx).reshape(-1, 4), np.array(lb, dtype=np.int64), cmap))
    return samples, names


def read_voc(root: str, split: str, *, channels: int = 3, classes: Sequence[str] = VOC_CLASSES) -> List:
    """Samples of a Pascal VOC split (ImageSets/Main/<split>.txt), with class maps where a PNG exists."""
    r = Path(root)
    ids_file = r / "ImageSets" / "Main" / f"{split}.txt"
    if not ids_file.is_file():
        raise DatasetError(f"{ids_file} does not exist (a VOC folder has ImageSets/Main/{{train,val}}.txt)")
    samples = []
    for iid in ids_file.read_text().split():
        xml = r / "Annotations" / f"{iid}.xml"
        try:
            tree = ET.parse(xml).getroot()
        except (OSError, ET.ParseError) as e:
            raise DatasetError(f"{xml}: cannot read VOC annotation ({e})") from None
        fname = tree.findtext("filename") or f"{iid}.jpg"
        img = _load_image(r / "JPEGImages" / fname, channels)
        h, w = img.shape[:2]
        bx, lb = [], []
        for obj in tree.iter("object"):
            name = obj.findtext("name")
            if name not in classes:
                raise DatasetError(f"{xml}: unknown class {name!r}; valid: {', '.join(classes)}")
            bb = obj.find("bndbox")
            box = np.array([float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])
            box[:2] -= 1  # VOC pixel indices are 1-based and inclusive
            _check_boxes(box[None], w, h, f"{xml}: object {name}")
            bx.append(box)
            lb.append(list(classes).index(name))
        png = r / "SegmentationClass" / f"{iid}.png"
        cmap = np.zeros((h, w), dtype=np.int64)
        if png.is_file():
            raw = _load_png(png)
            bad = (raw != 255) & (raw > len(classes))
            if bad.any():
                raise DatasetError(f"{png}: class {int(raw[bad].max())} outside 0..{len(classes)} (255 ignored)")
            cmap = raw  # VOC: 0 background, k + 1 class k, 255 boundary
        samples.append((img, np.array(bx).reshape(-1, 4), np.array(lb, dtype=np.int64), cmap))
    return samples


def read_label_maps(folder: str, num_classes: int, *, channels: int = 3, ignore_index: int = 255,
                    background: Optional[int] = None) -> List:
    """Samples from `folder/images/*` and `folder/labels/<same stem>.png`: a class index per pixel in
    [0, num_classes), `ignore_index` ignored; `background` (if given) is that class's index."""
    f = Path(folder)
    if not (f / "images").is_dir() or not (f / "labels").is_dir():
        raise DatasetError(f"{f} must hold images/ and labels/ folders")
    samples = []
    for img_path in sorted(p for p in (f / "images").iterdir() if p.is_file()):
        lab = f / "labels" / f"{img_path.stem}.png"
        if not lab.is_file():
            raise DatasetError(f"{img_path}: its label map {lab} is missing")
        img, raw = _load_image(img_path, channels), _load_png(lab)
        if raw.shape != img.shape[:2]:
            raise DatasetError(f"{lab}: size {raw.shape[::-1]} differs from its image's {img.shape[1::-1]}")
        bad = (raw != ignore_index) & ((raw < 0) | (raw >= num_classes))
        if bad.any():
            raise DatasetError(f"{lab}: class {int(raw[bad].max())} outside [0, {num_classes}) (ignore index {ignore_index})")
        cmap = np.where(raw == ignore_index, 255, raw + 1)
        if background is not None:
            cmap = np.where(raw == background, 0, cmap)
        samples.append((img, np.zeros((0, 4)), np.zeros(0, dtype=np.int64), cmap))
    if not samples:
        raise DatasetError(f"{f / 'images'} holds no images")
    return samples


def _scene(name: str, train: List, test: List, size: int, channels: int, num_classes: int,
           names: Sequence[str] = ()) -> SceneDataset:
    return SceneDataset(name, *_resize(train, size, channels), *_resize(test, size, channels), num_classes=num_classes,
                        img_size=size, in_chans=channels, class_names=tuple(names))


@DATASETS.register("coco", layout="scenes", kind="scenes", task="detect", in_chans=3, img_size=128)
def coco(root: Optional[str] = None, *, size: int = 128, channels: int = 3, train: str = "train", test: str = "val",
         year: str = "") -> SceneDataset:
    """COCO-format detection/segmentation data in `root` (annotations/instances_<split><year>.json, <split><year>/)."""
    if root is None:
        raise DatasetError("dataset 'coco' needs data.root=FOLDER with annotations/instances_train.json and train/")
    r = Path(root)
    tr, names = read_coco(str(r / "annotations" / f"instances_{train}{year}.json"), str(r / f"{train}{year}"), channels=channels)
    te, _ = read_coco(str(r / "annotations" / f"instances_{test}{year}.json"), str(r / f"{test}{year}"), channels=channels)
    return _scene("coco", tr, te, size, channels, len(names), names)


@DATASETS.register("voc", layout="scenes", kind="scenes", task="detect", num_classes=20, in_chans=3, img_size=128)
def voc(root: Optional[str] = None, *, size: int = 128, channels: int = 3, train: str = "train",
        test: str = "val") -> SceneDataset:
    """Pascal VOC in `root` (Annotations/, JPEGImages/, ImageSets/Main/, SegmentationClass/)."""
    if root is None:
        raise DatasetError("dataset 'voc' needs data.root=FOLDER (VOC2012's: Annotations, JPEGImages, ImageSets)")
    return _scene("voc", read_voc(root, train, channels=channels), read_voc(root, test, channels=channels), size,
                  channels, len(VOC_CLASSES), VOC_CLASSES)


@DATASETS.register("label_maps", layout="scenes", kind="scenes", task="segment", in_chans=3, img_size=128)
def label_maps(root: Optional[str] = None, *, num_classes: int = 150, size: int = 128, channels: int = 3,
               ignore_index: int = 255, background: Optional[int] = None) -> SceneDataset:
    """PNG label maps (ADE20K / Cityscapes style) in `root/train` and `root/val`."""
    if root is None:
        raise DatasetError("dataset 'label_maps' needs data.root=FOLDER with train/ and val/ (images/, labels/)")
    kw = dict(channels=channels, ignore_index=ignore_index, background=background)
    tr = read_label_maps(os.path.join(root, "train"), num_classes, **kw)
    te = read_label_maps(os.path.join(root, "val"), num_classes, **kw)
    return _scene("label_maps", tr, te, size, channels, num_classes)
