"""IDX files (the MNIST family's format), gzipped or not, and datasets made of four of them.

IDX layout, all big-endian: two zero bytes, a dtype code (0x08 uint8, 0x09 int8, 0x0B int16,
0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions `n`, then `n` uint32 sizes,
then the values in C order. See http://yann.lecun.com/exdb/mnist/ (bottom of the page).

Where the files are looked for: see `paths.candidate_folders`.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from ..errors import DatasetError
from .base import ArrayDataset
from .paths import candidate_folders

__all__ = ["read_idx", "find_idx_file", "candidate_folders", "load_idx_image_dataset"]

_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzip detected from its content, not its name) into a native-order array."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":  # gzip magic
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise DatasetError(f"IDX file {path} does not exist") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"IDX file {path}: unreadable or truncated gzip data ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DatasetError(f"IDX file {path}: bad magic number {raw[:4].hex() or '(empty file)'}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"IDX file {path}: truncated header ({len(raw)} bytes, {ndim} dimensions)")
    dims = [int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4)]
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise DatasetError(f"IDX file {path}: {what} ({len(raw)} bytes, expected {expected} for shape {dims})")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # a native-order, writable copy


def find_idx_file(folder: Path, stem: str) -> Optional[Path]:
    """`folder/stem.gz` or `folder/stem` when one exists, else None."""
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def load_idx_image_dataset(
    name: str,
    folders: Sequence[Path],
    *,
    num_classes: int,
    flip: bool,
    crop_padding: int,
    hint: str,
    class_names: Sequence[str] = (),
    stems: Sequence[str] = (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ),
) -> ArrayDataset:
    """Build an `ArrayDataset` from the four MNIST-style IDX files of the first folder holding them.

    Images `[N, H, W]` uint8 become `[N, 1, H, W]`; `hint` ends the missing-file message
    (how to install the data).
    """
    folder = next((f for f in folders if all(find_idx_file(f, s) for s in stems)), None)
    if folder is None:
        first = folders[0]
        missing = next(s for s in stems if find_idx_file(first, s) is None)
        state = "" if first.is_dir() else " (folder missing)"
        others = "".join(f", nor in {f}" for f in folders[1:])
        raise DatasetError(f"{name}: expected {missing}[.gz] in {first}{state}{others}; {hint}")
    xtr, ytr, xte, yte = (read_idx(find_idx_file(folder, s)) for s in stems)
    for split, x, y in (("train", xtr, ytr), ("test", xte, yte)):
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1] != x.shape[2] or y.ndim != 1 or len(y) != len(x):
            raise DatasetError(
                f"{name}: {split} files in {folder} hold images {x.dtype} {list(x.shape)} and labels "
                f"{list(y.shape)}; expected uint8 [N, S, S] and [N]"
            )
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            raise DatasetError(f"{name}: {split} labels in {folder} fall outside [0, {num_classes})")
    return ArrayDataset(
        name=name,
        train_x=torch.from_numpy(xtr[:, None]),  # [N, 1, S, S]
        train_y=torch.from_numpy(ytr.astype(np.int64)),
        test_x=torch.from_numpy(xte[:, None]),
        test_y=torch.from_numpy(yte.astype(np.int64)),
        num_classes=num_classes,
        in_chans=1,
        img_size=int(xtr.shape[1]),
        flip=flip,
        crop_padding=crop_padding,
        class_names=tuple(class_names),
    )
