"""How much of fashion_mnist_scenes' segmentation labelling the image cannot show: on how many object
pixels the label (the item drawn last) differs from the item whose intensity the pixel shows (the
brightest with `--occlusion max`; with `opaque`, the dataset's default, the last: none
should differ), and the mIoU (background included) of an oracle that knows every item's class and labels each pixel with
the item it shows: the ceiling of a segmenter that reads the image.
Replays the generator's draws for the test split (`draw_scenes`) and checks that it reproduces the
dataset's class maps exactly before counting. CPU, about 10 s.

    python benchmarks/scene_overlap.py --root .data/fashion-mnist [--n 1000]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
from spikeformers.data import create_dataset  # noqa: E402
from spikeformers.data.scenes import TEST_SEED_OFFSET, draw_scenes  # noqa: E402

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--root", default=None, help="Fashion-MNIST folder (default: the data search path)")
p.add_argument("--n", type=int, default=1000, help="test scenes (the recipes' test split is 1000)")
p.add_argument("--occlusion", default="max", choices=["max", "opaque"], help="the dataset option (default max, the old data)")
a = p.parse_args()

torch.set_num_threads(1)
src = create_dataset("fashion_mnist", root=a.root)
scenes = create_dataset("fashion_mnist_scenes", root=a.root, train=1, test=a.n, occlusion=a.occlusion)
fg = differ = 0
conf = torch.zeros(11, 11, dtype=torch.int64)  # [label, oracle's prediction], 0 background
# the test split's draws (seed 0, the dataset's defaults)
draws = draw_scenes(src.test_x, a.n, 64, seed=TEST_SEED_OFFSET, occlusion=a.occlusion)
for i, (picks, _, owner, shown) in enumerate(draws):
    mask = scenes.test_masks[i].long()
    labelled = mask > 0  # items left with < 20 visible pixels are dropped, with their pixels
    replay = src.test_y[picks][owner.clamp(min=0)] + 1
    if not (torch.equal(labelled, torch.isin(owner, owner[labelled].unique()))
            and torch.equal(mask[labelled], replay[labelled])):
        sys.exit(f"scene {i}: the replay does not reproduce the dataset's class map")
    fg += int(labelled.sum())
    differ += int((labelled & (shown != owner)).sum())
    oracle = torch.where(labelled, src.test_y[picks][shown.clamp(min=0)] + 1, 0)
    conf += torch.bincount(mask.flatten() * 11 + oracle.flatten(), minlength=121).view(11, 11)
print(f"{a.n} test scenes (replay checked against the dataset's class maps): {fg} labelled object pixels "
      f"({fg / (a.n * 64 * 64):.1%} of all pixels)")
print(f"the label is not the item the pixel shows on {differ / fg:.2%} of them")
iou = conf.diag() / (conf.sum(0) + conf.sum(1) - conf.diag())
print(f"oracle mIoU (classes known, each pixel labelled with the item it shows): {iou.mean():.4f}")
