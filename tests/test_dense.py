"""Dense prediction: backbone features, box geometry and NMS against brute force, FCOS assignment and
COCO metrics on hand examples, mIoU from a hand confusion matrix, synthetic scenes with exact boxes and
masks, joint augmentation, the dataset formats users have (true files written here), and both dense
tasks end to end through the engine."""
import json
import math
import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch

from spikeformers import create_model
from spikeformers.data import SceneDataset, SceneLoader, create_dataset
from spikeformers.data.scenes import compose_scenes, draw_scene
from spikeformers.errors import ConfigError, DatasetError
from spikeformers.tasks.boxes import batched_nms, box_iou, fcos_points, fcos_targets, giou_loss
from spikeformers.tasks.coco_eval import coco_box_metrics
from spikeformers.tasks.segment import confusion_matrix, segmentation_metrics
from spikeformers.train import load_config, train

SMALL = {"dim": 32, "depth": 1, "num_heads": 2, "pooling": "1111"}


# --- backbones as feature extractors -------------------------------------------------------------------------
@pytest.mark.parametrize("name, kw, want", [
    ("spikformer_8_384", dict(SMALL, img_size=32, in_chans=1), [(4, 2), (8, 4), (16, 8), (32, 16), (32, 16)]),
    ("sdt_8_384", dict(SMALL, img_size=32, in_chans=1), [(4, 2), (8, 4), (16, 8), (32, 16), (32, 16)]),
    ("qkformer_tiny", dict(img_size=16), [(16, 1), (32, 2), (64, 4)]),
])
def test_every_backbone_gives_multi_scale_features(name, kw, want):
    b = create_model(name, features_only=True, out_indices=range(len(want)), **kw)
    assert [(f["num_chs"], f["reduction"]) for f in b.feature_info] == want
    x = torch.rand(2, b.cfg.in_chans, b.cfg.img_size, b.cfg.img_size)
    for f, (c, r) in zip(b(x), want):
        assert f.shape == (b.cfg.T, 2, c, b.cfg.img_size // r, b.cfg.img_size // r)
    assert not hasattr(b.model, "head")
    with pytest.raises(ValueError, match=f"has {len(want)} feature maps .* out_indices \\(9,\\) is not available"):
        create_model(name, features_only=True, out_indices=(9,), **kw)


# --- boxes ----------------------------------------------------------------------------------------------------
def test_iou_and_giou_by_hand():
    a, b = torch.tensor([[0.0, 0, 2, 2]]), torch.tensor([[1.0, 1, 3, 3], [4.0, 4, 5, 5]])
    torch.testing.assert_close(box_iou(a, b), torch.tensor([[1 / 7, 0.0]]))
    # GIoU of the first pair: 1/7 - (9 - 7) / 9; of two far boxes: 0 - (25 - 5) / 25
    torch.testing.assert_close(giou_loss(a.expand(2, 4), b), torch.tensor([1 - (1 / 7 - 2 / 9), 1 + 20 / 25]))


def _nms_reference(boxes, scores, classes, thr):
    keep = []
    for i in sorted(range(len(scores)), key=lambda i: -float(scores[i])):
        if all(classes[i] != classes[j] or box_iou(boxes[i:i + 1], boxes[j:j + 1]).item() <= thr for j in keep):
            keep.append(i)
    return keep


def test_batched_nms_equals_greedy_brute_force():
    g = torch.Generator().manual_seed(0)
    for trial in range(5):  # crowded: chains where a suppressed box must not suppress others
        n = 60
        xy = torch.rand(n, 2, generator=g) * 30
        boxes = torch.cat([xy, xy + 8 + torch.rand(n, 2, generator=g) * 8], 1)
        scores, classes = torch.rand(n, generator=g), torch.randint(0, 3, (n,), generator=g)
        assert batched_nms(boxes, scores, classes, 0.4).tolist() == _nms_reference(boxes, scores, classes, 0.4)


def test_decoding_a_batch_equals_each_image_decoded_alone():
    """decode_detections suppresses a whole batch at once: per image it must keep what a brute-force
    greedy NMS over that image's best (location, class) pairs above the threshold keeps, capped."""
    from spikeformers.tasks.detect import decode_detections

    g = torch.Generator().manual_seed(1)
    points, _ = fcos_points([(4, 4), (2, 2)], [8, 16])  # 20 locations
    B, L, C = 3, 20, 4
    out = {"cls": torch.randn(B, L, C, generator=g), "ctr": torch.randn(B, L, generator=g),
           "box": torch.rand(B, L, 4, generator=g) * 6 + 4}
    dets = decode_detections(out, points, score_threshold=0.3, nms_iou=0.4, pre_nms=50, max_detections=15, size=32)
    for i in range(B):
        score = (out["cls"][i].sigmoid() * out["ctr"][i].sigmoid()[:, None]).sqrt()  # [L, C]
        boxes = torch.cat([points - out["box"][i, :, :2], points + out["box"][i, :, 2:]], 1).clamp(0, 32)
        pairs = sorted(((float(score[l, c]), l, c) for l in range(L) for c in range(C)), reverse=True)[:50]
        pairs = [p for p in pairs if p[0] > 0.3]
        bb = torch.stack([boxes[l] for _, l, _ in pairs])
        sc = torch.tensor([p[0] for p in pairs])
        cl = torch.tensor([c for _, _, c in pairs])
        keep = _nms_reference(bb, sc, cl, 0.4)[:15]
        got_boxes, got_scores, got_labels = dets[i]
        torch.testing.assert_close(got_boxes, bb[keep])
        torch.testing.assert_close(got_scores, sc[keep])
        assert got_labels.tolist() == cl[keep].tolist()


def test_fcos_assignment_by_hand():
    points, strides = fcos_points([(2, 2)], [8])  # centres (4, 4), (12, 4), (4, 12), (12, 12)
    assert points.tolist() == [[4, 4], [12, 4], [4, 12], [12, 12]]
    boxes = torch.tensor([[[0.0, 0, 10, 10], [2.0, 2, 16, 16]]])
    labels = torch.tensor([[3, 5]])
    ranges = torch.tensor([[0.0, float("inf")]] * 4)
    label, ltrb, ctr = fcos_targets(points, strides, boxes, labels, ranges, radius=10)
    # (4, 4) lies in both boxes: the smaller (area 100, class 3) wins; the others only in the second
    assert label.tolist() == [[3, 5, 5, 5]]
    assert ltrb[0, 0].tolist() == [4, 4, 6, 6] and ltrb[0, 3].tolist() == [10, 10, 4, 4]
    assert ctr[0, 0].item() == pytest.approx(math.sqrt((4 / 6) * (4 / 6)))
    label, _, ctr = fcos_targets(points, strides, boxes, labels, torch.tensor([[0.0, 5.0]] * 4), radius=10)
    assert label.tolist() == [[-1, -1, -1, -1]] and ctr.abs().sum() == 0  # every box out of the level's range


def test_coco_evaluator_wiring_on_a_hand_example():
    gts = [(torch.tensor([[10.0, 10, 30, 30], [40, 40, 60, 60]]), torch.tensor([0, 1]))]
    # class 0 found exactly; class 1's only detection misses: AP 1 and 0, so the mean is 0.5 at every IoU
    dets = [(torch.tensor([[10.0, 10, 30, 30], [0, 0, 5, 5]]), torch.tensor([0.9, 0.8]), torch.tensor([0, 1]))]
    m = coco_box_metrics(gts, dets, 2)
    assert m["map50"] == pytest.approx(0.5) and m["map"] == pytest.approx(0.5)
    # a box of IoU 0.6 with its truth counts at 0.5 but at none of 0.65 .. 0.95: mAP@0.5:0.95 = 0.2 / 2
    dets = [(torch.tensor([[10.0, 10, 30, 30], [40, 40, 60, 60 * 0.6 + 40 * 0.4]]), torch.tensor([0.9, 0.8]),
             torch.tensor([0, 1]))]
    iou = box_iou(torch.tensor([[40.0, 40, 60, 52]]), torch.tensor([[40.0, 40, 60, 60]])).item()
    assert iou == pytest.approx(0.6)
    m = coco_box_metrics(gts, dets, 2)
    assert m["map50"] == pytest.approx(1.0) and m["map"] == pytest.approx((1.0 + 0.3) / 2)  # 3 of 10 thresholds


def test_miou_and_pixel_accuracy_from_one_confusion_matrix():
    truth = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 0, 1]])
    cm = confusion_matrix(pred, truth, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 3, 0], [1, 0, 1]]  # the ignored pixel is not counted
    m = segmentation_metrics(cm)
    # IoU: class 0: 1 / (2 + 2 - 1); class 1: 3 / (3 + 4 - 3); class 2: 1 / (2 + 1 - 1)
    assert m["miou"] == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3) and m["pixel_acc"] == pytest.approx(5 / 7)


# --- scenes ---------------------------------------------------------------------------------------------------
def items(n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    for i in range(n):  # a filled rectangle of random extent per item
        a, b = torch.randint(2, 10, (2,), generator=g).tolist()
        x[i, 0, a:28 - a, b:28 - b] = 200
    return x, torch.arange(n) % 10


def test_composed_scenes_have_exact_boxes_and_masks_and_repeat_by_seed():
    x, y = items()
    im, bx, lb, mk = compose_scenes(x, y, 12, 64, seed=3)
    again = compose_scenes(x, y, 12, 64, seed=3)
    assert all(torch.equal(a, b) for a, b in zip((im, bx, lb, mk), again))
    assert not torch.equal(compose_scenes(x, y, 12, 64, seed=4)[0], im)
    for i in range(12):
        n = int((lb[i] >= 0).sum())
        assert 1 <= n <= 6 and (lb[i, n:] == -1).all()
        covered = torch.zeros(64, 64, dtype=torch.bool)
        for j in range(n):
            x0, y0, x1, y1 = bx[i, j].long().tolist()
            assert (mk[i, y0:y1, x0:x1] == lb[i, j] + 1).any()  # its pixels are in its box
            covered[y0:y1, x0:x1] = True
        assert ((mk[i] > 0) <= covered).all() and ((mk[i] > 0) <= (im[i, 0] > 0)).all()


def test_overlap_is_labelled_with_the_later_item_and_shows_what_occlusion_says():
    # two 28 x 28 items on a 28 x 28 canvas, both at (0, 0): the first bright on its left half, the second dim all over
    first = torch.zeros(1, 28, 28, dtype=torch.uint8)
    first[:, :, :14] = 200
    second = torch.full((1, 28, 28), 100, dtype=torch.uint8)
    canvas, owner, shown = draw_scene(torch.stack([first, second]), torch.tensor([0, 1]), 28, (1.0, 1.0), 40,
                                      torch.Generator().manual_seed(0), occlusion="max")
    assert (canvas[:, :14] == 200).all() and (canvas[:, 14:] == 100).all()
    assert (owner == 1).all()  # the later item owns every pixel it covers
    assert (shown[:, :14] == 0).all() and (shown[:, 14:] == 1).all()  # the brighter one is what the pixel shows
    canvas, owner2, shown = draw_scene(torch.stack([first, second]), torch.tensor([0, 1]), 28, (1.0, 1.0), 40,
                                       torch.Generator().manual_seed(0))  # the default: opaque
    assert (canvas == 100).all() and torch.equal(owner2, owner) and (shown == 1).all()  # the later one hides it
    x, y = items()
    max_scenes, opaque_scenes = (compose_scenes(x, y, 6, 64, seed=3, occlusion=o) for o in ("max", "opaque"))
    assert all(torch.equal(a, b) for a, b in zip(max_scenes[1:], opaque_scenes[1:]))  # same boxes, labels, masks
    assert (opaque_scenes[0] <= max_scenes[0]).all() and not torch.equal(opaque_scenes[0], max_scenes[0])
    with pytest.raises(ConfigError, match="occlusion must be 'max' or 'opaque', got 'alpha'"):
        compose_scenes(x, y, 1, 64, occlusion="alpha")


def scene_dataset(n=8, size=64, seed=0):
    x, y = items()
    tr, te = compose_scenes(x, y, n, size, seed=seed), compose_scenes(x, y, n, size, seed=seed + 1)
    return SceneDataset("scenes", *tr, *te, num_classes=10, img_size=size, in_chans=1)


def test_joint_augmentation_moves_boxes_with_their_pixels():
    ds = scene_dataset(16)
    loader = SceneLoader(ds.train_images, ds.train_boxes, ds.train_labels, ds.train_masks, 16, shuffle=True,
                         seed=1, flip=0.5, shift=6)
    x, t = next(iter(loader))
    assert x.shape == (16, 1, 64, 64) and 0 <= x.min() and x.max() <= 1
    for i in range(16):
        for b, l in zip(t["boxes"][i], t["labels"][i]):
            if l < 0:
                continue
            x0, y0, x1, y1 = b.round().long().tolist()
            inside = t["masks"][i, y0:y1, x0:x1] == l + 1
            assert inside.any()  # the moved box still holds pixels of its class
            outside = (t["masks"][i] == l + 1).clone()
            outside[y0:y1, x0:x1] = False
            assert (x[i, 0][t["masks"][i] > 0] > 0).all()  # masks moved with the image


def test_bad_scene_data_is_a_one_line_error():
    ds = scene_dataset(4)
    bad = ds.train_boxes.clone()
    bad[0, 0] = torch.tensor([10.0, 10, 5, 20])
    with pytest.raises(ConfigError, match="zero or negative size"):
        SceneDataset("s", ds.train_images, bad, ds.train_labels, ds.train_masks, *[getattr(ds, f"test_{k}") for k in
                     ("images", "boxes", "labels", "masks")], num_classes=10, img_size=64, in_chans=1)
    bad = ds.train_boxes.clone()
    bad[0, 0] = torch.tensor([10.0, 10, 70, 20])
    with pytest.raises(ConfigError, match="outside the 64 x 64 image"):
        SceneDataset("s", ds.train_images, bad, ds.train_labels, ds.train_masks, *[getattr(ds, f"test_{k}") for k in
                     ("images", "boxes", "labels", "masks")], num_classes=10, img_size=64, in_chans=1)
    masks = ds.train_masks.clone()
    masks[0, 0, 0] = 12
    with pytest.raises(ConfigError, match="class map holds class 11, outside"):
        SceneDataset("s", ds.train_images, ds.train_boxes, ds.train_labels, masks, *[getattr(ds, f"test_{k}") for k in
                     ("images", "boxes", "labels", "masks")], num_classes=10, img_size=64, in_chans=1)


# --- the formats users have -------------------------------------------------------------------------------------
def _png(path, array, mode):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode=mode).save(path)


def write_coco(root, split, missing_image=False):
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    img = np.zeros((40, 60, 3), dtype=np.uint8)
    img[10:30, 5:25] = 200
    _png(root / split / "a.png", img, "RGB")
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray((np.arange(60)[None] >= 40) & (np.arange(40)[:, None] < 10)).astype(np.uint8))
    rle["counts"] = rle["counts"].decode()
    d = {"images": [{"id": 7, "file_name": "a.png", "width": 60, "height": 40}]
         + ([{"id": 8, "file_name": "gone.png", "width": 60, "height": 40}] if missing_image else []),
         "categories": [{"id": 3, "name": "box"}, {"id": 9, "name": "corner"}],
         "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [5, 10, 20, 20], "iscrowd": 0, "area": 400,
                          "segmentation": [[5, 10, 25, 10, 25, 30, 5, 30]]},
                         {"id": 2, "image_id": 7, "category_id": 9, "bbox": [40, 0, 20, 10], "iscrowd": 0, "area": 200,
                          "segmentation": rle}]}
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(d))


def test_coco_json_with_polygon_and_rle_masks(tmp_path):
    for split in ("train", "val"):
        write_coco(tmp_path, split)
    ds = create_dataset("coco", root=str(tmp_path), size=40, channels=1)
    assert ds.num_classes == 2 and ds.class_names == ("box", "corner")
    assert ds.train_labels[0].tolist() == [0, 1]
    # boxes scale by 40/60 in x and 40/40 in y
    torch.testing.assert_close(ds.train_boxes[0], torch.tensor([[5 * 2 / 3, 10, 25 * 2 / 3, 30], [40 * 2 / 3, 0, 40, 10]]))
    assert ds.train_masks[0, 20, 10] == 1 and ds.train_masks[0, 5, 35] == 2 and ds.train_masks[0, 35, 35] == 0
    write_coco(tmp_path, "train", missing_image=True)
    with pytest.raises(DatasetError, match="image gone.png \\(id 8\\) is missing"):
        create_dataset("coco", root=str(tmp_path))


def write_voc(root, box=(6, 11, 25, 30), cls=15, name="person"):
    ann = ET.Element("annotation")
    ET.SubElement(ann, "filename").text = "x.jpg"
    obj = ET.SubElement(ann, "object")
    ET.SubElement(obj, "name").text = name
    bb = ET.SubElement(obj, "bndbox")
    for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box):
        ET.SubElement(bb, k).text = str(v)
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    ET.ElementTree(ann).write(root / "Annotations" / "x.xml")
    _png(root / "JPEGImages" / "x.jpg", np.full((40, 40, 3), 90), "RGB")
    seg = np.zeros((40, 40))
    seg[10:30, 5:25] = cls
    seg[10, 5:25] = 255
    _png(root / "SegmentationClass" / "x.png", seg, "L")
    (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("x\n")


def test_pascal_voc_xml_boxes_and_png_masks(tmp_path):
    write_voc(tmp_path)
    ds = create_dataset("voc", root=str(tmp_path), size=40)
    assert ds.num_classes == 20 and ds.train_labels[0].tolist() == [14]  # person
    assert ds.train_boxes[0, 0].tolist() == [5, 10, 25, 30]  # 1-based inclusive -> 0-based
    assert ds.train_masks[0, 20, 10] == 15 and ds.train_masks[0, 10, 10] == 255 and ds.train_masks[0, 0, 0] == 0
    write_voc(tmp_path, box=(6, 11, 55, 30))
    with pytest.raises(DatasetError, match="lies outside the 40 x 40 image"):
        create_dataset("voc", root=str(tmp_path), size=40)
    write_voc(tmp_path, cls=33)
    with pytest.raises(DatasetError, match="class 33 outside 0..20"):
        create_dataset("voc", root=str(tmp_path), size=40)


def test_png_label_maps_and_out_of_range_classes(tmp_path):
    for split in ("train", "val"):
        _png(tmp_path / split / "images" / "a.png", np.full((20, 30), 50), "L")
        lab = np.zeros((20, 30))
        lab[:, 15:] = 2
        lab[0, 0] = 255
        _png(tmp_path / split / "labels" / "a.png", lab, "L")
    ds = create_dataset("label_maps", root=str(tmp_path), num_classes=3, size=20, channels=1)
    assert ds.train_masks[0, 10, 2] == 1 and ds.train_masks[0, 10, 18] == 3 and ds.train_masks[0, 0, 0] == 255
    with pytest.raises(DatasetError, match="class 2 outside \\[0, 2\\)"):
        create_dataset("label_maps", root=str(tmp_path), num_classes=2)


# --- the segmentation head's full-resolution refinement ----------------------------------------------------------
def _bn(bn, x):
    """BatchNorm2d in eval mode, written out."""
    shape = (1, -1, 1, 1)
    return (x - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + bn.eps) * bn.weight.view(shape) \
        + bn.bias.view(shape)


def _up2_bilinear(z):
    """2x bilinear upsampling (half-pixel centres, edges clamped), written out: output i reads source
    (i + 0.5) / 2 - 0.5, i.e. 0.75 of its own source pixel and 0.25 of the neighbour on its side."""
    def axis(z, dim):
        n = z.shape[dim]
        idx = torch.arange(2 * n)
        own, other = idx // 2, (idx // 2 + torch.where(idx % 2 == 0, -1, 1)).clamp(0, n - 1)
        return 0.75 * z.index_select(dim, own) + 0.25 * z.index_select(dim, other)
    return axis(axis(z, -1), -2)


@pytest.mark.parametrize("coarse_logits, readout", [(False, "membrane"), (True, "membrane"), (True, "rate")])
def test_fine_refinement_equals_a_written_out_reference(coarse_logits, readout):
    from spikeformers.layers.seg_head import SpikingFPNHead

    torch.manual_seed(0)  # identity neurons: the rate read-out sums per time step, the membrane one averages first
    head = SpikingFPNHead([3, 5], num_outputs=4, dim=6, neuron=torch.nn.Identity, fine_dim=2, in_chans=1,
                          coarse_logits=coarse_logits, readout=readout).eval()
    for m in head.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 2)
            m.bias.data.uniform_(-1, 1)
    T, B = 2, 3
    f0, f1, x = torch.rand(T, B, 3, 4, 4), torch.rand(T, B, 5, 2, 2), torch.rand(T, B, 1, 8, 8)
    out = head([f0, f1], 8, x)
    # reference: identity neurons, so the head is convolutions, BN and nearest upsampling
    conv = lambda m, z: torch.nn.functional.conv2d(z, m.conv.weight, None, padding=m.conv.padding)  # noqa: E731
    want = []
    for t in range(T):
        p = _bn(head.lateral[1].bn, conv(head.lateral[1], f1[t])).repeat_interleave(2, -1).repeat_interleave(2, -2)
        p = p + _bn(head.lateral[0].bn, conv(head.lateral[0], f0[t]))
        s = _bn(head.fuse.bn, conv(head.fuse, p))
        c = _bn(head.coarse.bn, conv(head.coarse, s)).repeat_interleave(2, -1).repeat_interleave(2, -2)
        r = c + _bn(head.fine_in.bn, conv(head.fine_in, x[t]))
        want.append(torch.nn.functional.conv2d(r, head.classifier.weight, head.classifier.bias, padding=1))
        if coarse_logits:  # plus the fused map's own class logits, upsampled
            w = head.coarse_classifier
            want[-1] = want[-1] + _up2_bilinear(torch.einsum("kc,bchw->bkhw", w.weight[:, :, 0, 0], s)
                                                + w.bias.view(1, -1, 1, 1))
    torch.testing.assert_close(out, torch.stack(want).mean(0), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="needs the encoded input"):
        head([f0, f1], 8)
    with pytest.raises(ValueError, match="fine_dim must be >= 0"):
        SpikingFPNHead([3], 4, 6, torch.nn.Identity, fine_dim=-1)


def test_fine_refinement_sees_single_pixels_of_the_input():
    """With the refinement, one input pixel moves the logits only near it (two 3x3 convs: within 2
    pixels) beyond what it does through the backbone; without it, logits are a stride-4 map upsampled."""
    torch.manual_seed(0)
    kw = dict(backbone_opts=SMALL, out_indices=(1, 2, 4), img_size=32, num_classes=3, head_dim=8, neuron="if")
    fine = create_model("fpn_segmenter", fine_dim=4, **kw).eval()
    x = torch.rand(1, 1, 32, 32)
    xt = fine.backbone.encode(x)
    feats = fine.backbone(xt)
    x2 = xt.clone()
    x2[..., 13, 20] += 5.0
    moved = (fine.head(feats, 32, x2) - fine.head(feats, 32, xt)).abs().amax((0, 1))  # backbone features held
    ys, xs = torch.nonzero(moved > 0, as_tuple=True)
    assert len(ys) > 0 and (ys - 13).abs().max() <= 2 and (xs - 20).abs().max() <= 2
    assert fine(x).shape == (1, 4, 32, 32)
    # the refinement reads the analog input, as the backbone's first conv: both charged once, not T times
    from spikeformers.energy.counter import count_ops

    c = count_ops(fine, torch.rand(2, 1, 32, 32))
    layers, raw = {l.name: l for l in c.layers}, {l.name: l for l in c.raw}
    for name in ("backbone.model.patch_embed.stages.0.conv", "head.fine_in.conv"):
        assert layers[name].analog_first and layers[name].mac == pytest.approx(raw[name].ops / fine.backbone.cfg.T)
    coarse = create_model("fpn_segmenter", fine_dim=0, **kw).eval()
    assert coarse.head.fine_dim == 0 and not hasattr(coarse.head, "fine_in") and coarse(x).shape == (1, 4, 32, 32)
    with pytest.raises(ValueError, match="fine_dim and coarse_logits .* do not apply to a detector"):
        create_model("fcos_detector", fine_dim=4, backbone_opts=SMALL, img_size=32)


# --- both tasks through the engine --------------------------------------------------------------------------------
@pytest.mark.parametrize("model, task, metric", [("fcos_detector", "detect", "test_map50"),
                                                 ("fpn_segmenter", "segment", "test_miou")])
def test_dense_tasks_train_and_report_their_metric(tmp_path, monkeypatch, model, task, metric):
    from spikeformers.train import engine, evaluate

    ds = scene_dataset(16)
    monkeypatch.setattr(engine, "build_dataset", lambda cfg: ds)
    monkeypatch.setattr(evaluate, "build_dataset", lambda cfg: ds)
    cfg = load_config(None, [f"model={model}", "data=fashion_mnist_scenes", f"task={task}", "batch_size=8", "epochs=1",
                             f"model.backbone_opts={json.dumps(SMALL)}", f"run.out_dir={tmp_path}", "run.device=cpu"])
    s = train(cfg, progress=False)
    assert s["task"] == task and s["metric"] == metric and 0 <= s[metric] <= 1 and s["test_images"] == 16
    assert s["energy"]["snn_uJ"] > 0 and s["energy"]["ann_twin_uJ"] > 0  # heads counted, twin built
    ev = evaluate.evaluate_run(s["run_dir"], device="cpu")
    assert ev[metric] == pytest.approx(s[metric])
