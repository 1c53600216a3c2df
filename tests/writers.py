"""Writers of the true on-disk formats, built by hand from their specifications (not with our readers),
so the loaders are tested against files that look like the released ones."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple

import numpy as np

# ----------------------------------------------------------------------------- IDX

_IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def write_idx(path: Path, arr: np.ndarray, gz: bool) -> Path:
    """IDX bytes built from the spec: 0, 0, dtype code, ndim, big-endian uint32 dims, big-endian data."""
    header = bytes([0, 0, _IDX_CODES[arr.dtype.type], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_mnist_like(folder: Path, n_train=12, n_test=5, size=6, gz=True, classes=10, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for stem, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        y = rng.integers(0, classes, n).astype(np.uint8)
        ext = ".gz" if gz else ""
        write_idx(folder / f"{stem}-images-idx3-ubyte{ext}", x, gz)
        write_idx(folder / f"{stem}-labels-idx1-ubyte{ext}", y, gz)
        out[stem] = (x, y)
    return out


# ----------------------------------------------------------------------------- CIFAR python batches
# The released batches were written by Python 2's cPickle (protocol 2): Python 2 strings are
# SHORT_BINSTRING/BINSTRING opcodes and arrays are rebuilt by numpy.core.multiarray._reconstruct.


def _pstr(b: bytes) -> bytes:
    return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<i", len(b)) + b)


def _pint(v: int) -> bytes:
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    return b"J" + struct.pack("<i", v)


def _parray_u8(a: np.ndarray) -> bytes:
    shape = b"(" + b"".join(_pint(d) for d in a.shape) + b"t"
    dtype = (b"cnumpy\ndtype\n" + _pstr(b"u1") + _pint(0) + _pint(1) + b"\x87R"
             + b"(" + _pint(3) + _pstr(b"|") + b"NNN" + _pint(-1) + _pint(-1) + _pint(0) + b"tb")
    return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + _pint(0) + b"\x85" + _pstr(b"b") + b"\x87R"
            + b"(" + _pint(1) + shape + dtype + b"\x89" + _pstr(a.tobytes()) + b"tb")


def cifar_batch_bytes(data: np.ndarray, labels: dict) -> bytes:
    """A pickled dict {b'batch_label', b'data' uint8 [N, 3072], <label key>: [int], b'filenames'}."""
    items = _pstr(b"batch_label") + _pstr(b"training batch 1 of 5") + _pstr(b"data") + _parray_u8(data)
    for key, values in labels.items():
        items += _pstr(key) + b"](" + b"".join(_pint(int(v)) for v in values) + b"e"
    items += _pstr(b"filenames") + b"](" + b"".join(_pstr(f"img_{i}.png".encode()) for i in range(len(data))) + b"e"
    return b"\x80\x02}(" + items + b"u."


def write_cifar10(folder: Path, n_per_batch=3, seed=0):
    """`data_batch_1..5` and `test_batch`; returns {name: (images [N, 3, 32, 32], labels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, n_per_batch)
        (folder / name).write_bytes(cifar_batch_bytes(x, {b"labels": y}))
        out[name] = (x.reshape(-1, 3, 32, 32), y)
    return out


def write_cifar100(folder: Path, n=4, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for name in ("train", "test"):
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine, coarse = rng.integers(0, 100, n), rng.integers(0, 20, n)
        (folder / name).write_bytes(cifar_batch_bytes(x, {b"fine_labels": fine, b"coarse_labels": coarse}))
        out[name] = (x.reshape(-1, 3, 32, 32), fine, coarse)
    return out


# ----------------------------------------------------------------------------- AEDAT
# Events given in image coordinates: x column (0 left), y row (0 top), p 1 = ON.


def write_aedat2_dvs128(path: Path, t: Sequence[int], x: Sequence[int], y: Sequence[int], p: Sequence[int],
                        special: Iterable[Tuple[int, int]] = ()) -> Path:
    """jAER AEDAT 2.0: '#' header lines, then big-endian (uint32 address, uint32 timestamp) pairs.
    DVS128 address: bit 0 = 1 - polarity, bits 1-7 = 127 - x, bits 8-14 = 127 - y; bit 15 = special."""
    header = b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n# Data format is int32 address, int32 timestamp (8 bytes total)\r\n#HardwareInterface: DVS128\r\n"
    words: List[int] = []
    for ti, xi, yi, pi in zip(t, x, y, p):
        words += [((127 - yi) << 8) | ((127 - xi) << 1) | (1 - pi), ti]
    for addr, ti in special:
        words += [addr | 0x8000, ti]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + struct.pack(f">{len(words)}I", *words))
    return path


def aedat3_packet(event_type: int, events: List[Tuple[int, int]], overflow: int = 0, capacity: int = 0) -> bytes:
    """One AEDAT 3.1 packet of 8-byte events (uint32 data, int32 timestamp), little-endian, with
    `capacity - len(events)` unused slots of garbage after the used ones."""
    capacity = max(capacity, len(events))
    header = struct.pack("<hhiiiiii", event_type, 1, 8, 4, overflow, capacity, len(events), len(events))
    body = b"".join(struct.pack("<Ii", d, ts) for d, ts in events)
    return header + body + b"\xab" * 8 * (capacity - len(events))


def polarity_word(x: int, y: int, p: int, valid: bool = True) -> int:
    """AEDAT 3.1 polarity data: bit 0 valid, bit 1 polarity, bits 2-16 y, bits 17-31 x."""
    return (x << 17) | (y << 2) | (p << 1) | int(valid)


def write_aedat3(path: Path, packets: Sequence[bytes]) -> Path:
    header = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#Start-Time: 2017-01-01 00:00:00\r\n#!END-HEADER\r\n"
    path.write_bytes(header + b"".join(packets))
    return path


def random_events(n: int, t0: int, t1: int, seed: int, side: int = 128):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(t0, t1, n))
    return t, rng.integers(0, side, n), rng.integers(0, side, n), rng.integers(0, 2, n)


def spikingjelly_spikformer():
    """(SpikingJelly's `functional`, its `Spikformer` class), or skip the test when it is not installed."""
    import sys
    import types

    import pytest

    pytest.importorskip("spikingjelly.activation_based.neuron")
    try:
        import h5py  # noqa: F401  (imported by SpikingJelly's model package, unused here)
    except ImportError:
        sys.modules["h5py"] = types.ModuleType("h5py")
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.model.spikformer import Spikformer

    return functional, Spikformer
