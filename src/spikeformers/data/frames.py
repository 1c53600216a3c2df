"""Integrate an event stream into `T` frames of per-pixel, per-polarity event counts `[T, 2, H, W]`.

Two ways to cut the stream into `T` slices (SpikingJelly's `split_by` options):
- "number": equal event counts, event i (in time order) goes to slice floor(i T / N);
- "time": equal durations over [t_start, t_end), event at t to slice floor((t - t_start) T / (t_end - t_start)).

Channel 0 counts OFF events, channel 1 ON events. `size` bins the sensor down by an integer factor
(counts of each factor x factor block are summed). Counts saturate at 255 (uint8).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from ..errors import ConfigError
from .aedat import Events

__all__ = ["events_to_frames", "check_frame_options"]


def check_frame_options(name: str, frames: int, split_by: str, size: int, sensor: int) -> None:
    """Validate a dataset's frame options (ConfigError naming the dataset)."""
    if not isinstance(frames, int) or frames < 1:
        raise ConfigError(f"{name}: frames must be a positive integer, got {frames!r}")
    if split_by not in ("number", "time"):
        raise ConfigError(f"{name}: split_by must be 'number' or 'time', got {split_by!r}")
    if not isinstance(size, int) or size < 1 or sensor % size:
        raise ConfigError(f"{name}: size must divide the sensor side {sensor}, got {size!r}")


def events_to_frames(
    ev: Events,
    frames: int,
    sensor_size: Tuple[int, int],
    *,
    split_by: str = "number",
    size: Optional[Tuple[int, int]] = None,
    t_range: Optional[Tuple[int, int]] = None,
) -> np.ndarray:
    """Counts `[frames, 2, h, w]` uint8 of the events (`t_range` for "time": default first..last event + 1)."""
    H, W = sensor_size
    h, w = size if size is not None else (H, W)
    if H % h or W % w:
        raise ValueError(f"frame size {h}x{w} does not divide the sensor {H}x{W}")
    inside = (ev.x >= 0) & (ev.x < W) & (ev.y >= 0) & (ev.y < H)
    ev = ev if inside.all() else ev.select(inside)
    out = np.zeros((frames, 2, h, w), dtype=np.uint8)
    n = len(ev)
    if n == 0:
        return out
    order = np.argsort(ev.t, kind="stable")
    t, x, y, p = ev.t[order], ev.x[order].astype(np.int64), ev.y[order].astype(np.int64), ev.p[order].astype(np.int64)
    if split_by == "number":
        slot = np.arange(n, dtype=np.int64) * frames // n
    elif split_by == "time":
        t0, t1 = t_range if t_range is not None else (int(t[0]), int(t[-1]) + 1)
        keep = (t >= t0) & (t < t1)
        t, x, y, p = t[keep], x[keep], y[keep], p[keep]
        slot = (t - t0) * frames // max(t1 - t0, 1)
    else:
        raise ValueError(f"split_by must be 'number' or 'time', got {split_by!r}")
    flat = ((slot * 2 + p) * h + y // (H // h)) * w + x // (W // w)
    counts = np.bincount(flat, minlength=frames * 2 * h * w)
    return np.minimum(counts, 255).astype(np.uint8).reshape(frames, 2, h, w)
