"""DVS128 Gesture (Amir et al., CVPR 2017, https://research.ibm.com/interactive/dvsgesture/): 11 hand and
arm gestures by 29 subjects under 3-5 lighting conditions, recorded by a DVS128 (128 x 128).

As released (`DvsGesture.tar.gz`), one folder holds per recording `userNN_<lighting>.aedat` (AEDAT
3.1, see `aedat.py`) and `userNN_<lighting>_labels.csv` (a header line `class,startTime_usec,
endTime_usec`, then one gesture per line: class 1..11 and its time window), plus the official split
lists `trials_to_train.txt` / `trials_to_test.txt` (users 1-23 train, 24-29 test, used when the
lists are absent). Each labelled window [start, end) is one sample (label = class - 1), integrated
into `frames` count frames (`frames.py`) and stored as uint8 `[N, frames, 2, size, size]`; the result
is cached (`paths.cache_dir()`), keyed by the options and the files' sizes and dates.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch

from ..errors import DatasetError
from .aedat import read_aedat
from .base import ArrayDataset
from .frames import check_frame_options, events_to_frames
from .paths import cache_dir, cache_key, cached_arrays, candidate_folders, files_fingerprint, first_folder_with
from .registry import DATASETS

__all__ = ["dvs128_gesture", "read_gesture_labels"]

SENSOR = 128
NUM_CLASSES = 11


def read_gesture_labels(path: Path) -> List[Tuple[int, int, int]]:
    """(label 0..10, start_us, end_us) rows of a `_labels.csv` file."""
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise DatasetError(f"dvs128_gesture: cannot read {path} ({e.strerror or e})") from None
    rows = []
    for i, line in enumerate(lines):
        line = line.strip()
        if not line or (i == 0 and not line[0].isdigit()):  # blank line or the header
            continue
        try:
            cls, start, end = (int(v) for v in line.split(","))
        except ValueError:
            raise DatasetError(f"dvs128_gesture: {path} line {i + 1}: expected 'class,start,end', got {line!r}") from None
        if not 1 <= cls <= NUM_CLASSES or end <= start:
            raise DatasetError(f"dvs128_gesture: {path} line {i + 1}: class {cls} or window [{start}, {end}) invalid")
        rows.append((cls - 1, start, end))
    return rows


def _trials(folder: Path) -> Tuple[List[Path], List[Path]]:
    """The train and test recordings: the official lists when present, else users 1-23 / 24-29."""
    lists = [folder / "trials_to_train.txt", folder / "trials_to_test.txt"]
    if all(f.is_file() for f in lists):
        train, test = ([folder / n for n in f.read_text().split()] for f in lists)
        return train, test
    train, test = [], []
    for f in sorted(folder.glob("user*_*.aedat")):
        m = re.match(r"user(\d+)_", f.name)
        (train if m and int(m.group(1)) <= 23 else test).append(f)
    return train, test


def _missing(folder: Path) -> Optional[str]:
    if not any(folder.glob("user*_*.aedat")):
        return "userNN_<lighting>.aedat files"
    for f in folder.glob("user*_*.aedat"):
        if not f.with_name(f.stem + "_labels.csv").is_file():
            return f"{f.stem}_labels.csv"
    return None


@DATASETS.register("dvs128_gesture", num_classes=11, img_size=128, in_chans=2, layout="events", frames=16)
def dvs128_gesture(
    root: Optional[str] = None,
    *,
    frames: int = 16,
    split_by: str = "number",
    size: int = 128,
    cache: bool = True,
) -> ArrayDataset:
    """DVS128 Gesture as event frames `[N, frames, 2, size, size]` uint8 (1176 train / 288 test windows
    in the full release), 11 classes."""
    check_frame_options("dvs128_gesture", frames, split_by, size, SENSOR)
    folder = first_folder_with(
        "dvs128_gesture", candidate_folders(root, "DvsGesture", "~/datasets/DvsGesture"), _missing,
        "download DvsGesture.tar.gz from https://research.ibm.com/interactive/dvsgesture/, extract it and pass "
        "data.root=.../DvsGesture",
    )
    train, test = _trials(folder)
    for f in train + test:
        if not f.is_file():
            raise DatasetError(f"dvs128_gesture: {f} is listed in the split but missing")

    def build():
        out = {}
        for split, files in (("train", train), ("test", test)):
            xs, ys = [], []
            for f in files:
                ev = read_aedat(f)
                for label, start, end in read_gesture_labels(f.with_name(f.stem + "_labels.csv")):
                    xs.append(events_to_frames(ev.window(start, end), frames, (SENSOR, SENSOR), split_by=split_by,
                                               size=(size, size), t_range=(start, end)))
                    ys.append(label)
            if not xs:
                raise DatasetError(f"dvs128_gesture: no labelled gestures in the {split} recordings of {folder}")
            out[f"{split}_x"], out[f"{split}_y"] = np.stack(xs), np.array(ys, dtype=np.int64)
        return out

    csvs = [f.with_name(f.stem + "_labels.csv") for f in train + test]
    key = cache_key(frames=frames, split_by=split_by, size=size, files=files_fingerprint(train + test + csvs))
    d = cached_arrays(cache_dir() / "dvs128_gesture" / f"dvs128_gesture-{key}.npz", build, use_cache=cache)
    return ArrayDataset(
        name="dvs128_gesture",
        train_x=torch.from_numpy(d["train_x"]), train_y=torch.from_numpy(d["train_y"]),
        test_x=torch.from_numpy(d["test_x"]), test_y=torch.from_numpy(d["test_y"]),
        num_classes=NUM_CLASSES, in_chans=2, img_size=size,
        flip=False,  # mirrored gestures change class (left/right arm, clockwise/counter-clockwise)
        crop_padding=size // 16,
        layout="events", frames=frames,
    )
