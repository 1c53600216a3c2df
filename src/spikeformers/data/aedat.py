"""AEDAT event files (iniVation/jAER, https://docs.inivation.com/software/software-advanced-usage/file-formats/).

Every version starts with a text header of lines beginning with `#`, the first being the version
line `#!AER-DAT<version>`. Supported bodies:

- **AEDAT 2.0** (jAER; CIFAR10-DVS as released): the events follow the header, each 8 bytes, a
  big-endian uint32 address then a big-endian uint32 timestamp in microseconds. For the DVS128 the
  address holds the polarity in bit 0 (0 = ON), x in bits 1-7 and y in bits 8-14, both mirrored
  (jAER shows x = 127 - raw x and puts y = 0 at the bottom); bit 15 marks special (non-pixel)
  events, which are dropped.
- **AEDAT 3.1** (cAER; DVS128 Gesture): the header ends with `#!END-HEADER\r\n`; then packets, each
  a 28-byte little-endian header (int16 eventType, int16 eventSource, int32 eventSize, int32
  eventTSOffset, int32 eventTSOverflow, int32 eventCapacity, int32 eventNumber, int32 eventValid)
  and eventCapacity x eventSize bytes of events, of which the first eventNumber are used.
  Polarity events (type 1) are 8 bytes: a little-endian uint32 with bit 0 valid, bit 1 polarity
  (1 = ON), y in bits 2-16 and x in bits 17-31 (origin top left), then an int32 timestamp whose
  full value is `eventTSOverflow << 31 | timestamp`. Other event types and invalid events are skipped.

`read_aedat` returns image coordinates for both: x = column (0 at the left), y = row (0 at the top),
polarity 1 = ON (brighter), 0 = OFF.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

import numpy as np

from ..errors import DatasetError

__all__ = ["Events", "read_aedat", "parse_aedat_header", "POLARITY_EVENT"]

POLARITY_EVENT = 1  # AEDAT 3.1 eventType of polarity (DVS) events
_PACKET_HEADER = struct.Struct("<hhiiiiii")  # 28 bytes


@dataclass
class Events:
    """An event stream: timestamps `t` (int64, microseconds), `x` column, `y` row, `p` polarity (1 ON)."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray

    def __len__(self) -> int:
        return len(self.t)

    def select(self, mask: np.ndarray) -> "Events":
        return Events(self.t[mask], self.x[mask], self.y[mask], self.p[mask])

    def window(self, t_start: int, t_end: int) -> "Events":
        """The events with `t_start <= t < t_end`."""
        return self.select((self.t >= t_start) & (self.t < t_end))


def parse_aedat_header(raw: bytes, path: Path) -> Tuple[str, int]:
    """(version, offset of the first data byte) of an AEDAT file's bytes."""
    if not raw.startswith(b"#!AER-DAT"):
        raise DatasetError(f"AEDAT file {path}: no '#!AER-DAT' version line (AEDAT 1.0 and other formats "
                           "are not supported)")
    first_end = raw.find(b"\n")
    version = raw[len(b"#!AER-DAT") : first_end].strip().decode("ascii", "replace")
    if version.startswith("3"):
        end = raw.find(b"#!END-HEADER")
        if end < 0:
            raise DatasetError(f"AEDAT file {path}: version {version} header has no '#!END-HEADER' line")
        return version, raw.index(b"\n", end) + 1
    pos = 0  # version 2: the header is every line that starts with '#'
    while pos < len(raw) and raw[pos : pos + 1] == b"#":
        nl = raw.find(b"\n", pos)
        if nl < 0:
            raise DatasetError(f"AEDAT file {path}: the header never ends")
        pos = nl + 1
    return version, pos


def _read_v2_dvs128(raw: bytes, start: int, path: Path) -> Events:
    body = len(raw) - start
    if body % 8:
        raise DatasetError(f"AEDAT file {path}: truncated (body of {body} bytes is not a whole number of 8-byte events)")
    words = np.frombuffer(raw, dtype=">u4", offset=start).reshape(-1, 2)
    addr, ts = words[:, 0].astype(np.int64), words[:, 1].astype(np.int64)
    keep = (addr >> 15) & 1 == 0  # bit 15: special events (not pixels)
    addr, ts = addr[keep], ts[keep]
    x = 127 - ((addr >> 1) & 0x7F)
    y = 127 - ((addr >> 8) & 0x7F)  # jAER's y grows upwards; rows grow downwards
    p = 1 - (addr & 1)
    return Events(ts, x.astype(np.int16), y.astype(np.int16), p.astype(np.uint8))


def _read_v3(raw: bytes, start: int, path: Path) -> Events:
    ts_parts, data_parts = [], []
    pos, n = start, len(raw)
    while pos < n:
        if pos + _PACKET_HEADER.size > n:
            raise DatasetError(f"AEDAT file {path}: truncated packet header at byte {pos}")
        etype, _src, size, ts_off, overflow, capacity, number, _valid = _PACKET_HEADER.unpack_from(raw, pos)
        pos += _PACKET_HEADER.size
        length = capacity * size
        if size <= 0 or capacity < 0 or not 0 <= number <= capacity or pos + length > n:
            raise DatasetError(f"AEDAT file {path}: bad or truncated packet at byte {pos - _PACKET_HEADER.size} "
                               f"(size {size}, capacity {capacity}, number {number})")
        if etype == POLARITY_EVENT and number:
            if size % 4 or ts_off % 4 or ts_off + 4 > size:
                raise DatasetError(f"AEDAT file {path}: polarity packet with event size {size}, ts offset {ts_off}")
            ev = np.frombuffer(raw, dtype="<u4", count=number * size // 4, offset=pos).reshape(number, size // 4)
            data_parts.append(ev[:, 0].astype(np.int64))
            ts_parts.append(ev[:, ts_off // 4].astype(np.int64) | (np.int64(overflow) << 31))
        pos += length
    if not data_parts:
        return Events(np.zeros(0, np.int64), np.zeros(0, np.int16), np.zeros(0, np.int16), np.zeros(0, np.uint8))
    data, ts = np.concatenate(data_parts), np.concatenate(ts_parts)
    valid = (data & 1) == 1
    data, ts = data[valid], ts[valid]
    x = (data >> 17) & 0x7FFF
    y = (data >> 2) & 0x7FFF
    p = (data >> 1) & 1
    return Events(ts, x.astype(np.int16), y.astype(np.int16), p.astype(np.uint8))


def read_aedat(path: str | Path) -> Events:
    """All pixel events of an AEDAT 2.0 (DVS128 addresses) or 3.x file (see the module docstring)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"AEDAT file {path}: cannot read it ({e.strerror or e})") from None
    version, start = parse_aedat_header(raw, path)
    if version.startswith("2"):
        return _read_v2_dvs128(raw, start, path)
    if version.startswith("3"):
        return _read_v3(raw, start, path)
    raise DatasetError(f"AEDAT file {path}: version {version} is not supported (2.0 and 3.x are)")
