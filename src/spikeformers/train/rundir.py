"""Which run folders are ours: a new run creates its folder itself and writes its marker first, and
nothing writes into a folder it cannot prove it made.

    path = create_run_dir("runs", "digits_s0")             # runs/digits_s0, or -2, -3 ...: never an existing one
    refuse_links(path)                                     # before resuming a folder that may come from elsewhere

The marker is the run's `provenance.json`, written right after `os.mkdir` (which fails on any existing
name, a dangling link included, so two processes never get one folder). A suite cell's process gets
its suite's id in the environment variable `SPIKEFORMERS_SUITE_ID`: its folder is then exactly
`out_dir/name`, and an existing one is reused only if its marker carries that id and it holds no
checkpoint (a cell killed in its first epoch); its earlier records are removed, everything else in it
is left alone. spikeformers never makes a symbolic link, so `refuse_links` refuses any it finds in a run
folder: writing through one could change any file the reader can write.
"""
from __future__ import annotations

import errno
import json
import os
import stat
import time
from typing import Any, Dict, Optional

from ..errors import ConfigError
from ..io import atomic_write_json

__all__ = ["create_run_dir", "refuse_links", "read_marker", "record_start", "SUITE_ENV", "MARKER"]

SUITE_ENV = "SPIKEFORMERS_SUITE_ID"
MARKER = "provenance.json"
#: the records of a run that a fresh start in a reused cell folder replaces
_RECORDS = ("metrics.jsonl", "metrics.csv")


def read_marker(folder: str, name: str = MARKER) -> Optional[Dict[str, Any]]:
    """The JSON mapping of `folder/name` if it is a regular file (a link is not read), else None."""
    path = os.path.join(folder, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = json.loads(f.read(1 << 20).decode("utf-8"))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    return data if isinstance(data, dict) else None


def refuse_links(folder: str) -> None:
    """A one-line ConfigError naming the first symbolic link under `folder` (links are not followed)."""
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            path = os.path.join(root, name)
            if os.path.islink(path):
                raise ConfigError(f"{path} is a symbolic link, which spikeformers never makes: a folder from "
                                  f"elsewhere can point it at any file; remove it (or copy the folder without links)")


def record_start(folder: str, start: Dict[str, Any]) -> None:
    """Add one start (time, position, versions, device) to the marker, so unfinished runs have their provenance
    too; the marker's creation keys stay, and its first start's keys are the run's own at the top level."""
    prev = read_marker(folder) or {}
    starts = list(prev.get("starts", [])) + [{"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **start}]
    mark = {k: prev[k] for k in ("created", "suite_id") if k in prev}
    atomic_write_json(os.path.join(folder, MARKER), {**starts[0], **mark, "starts": starts})


def _mark(path: str, suite: Optional[str]) -> None:
    atomic_write_json(os.path.join(path, MARKER), {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                                   **({"suite_id": suite} if suite else {}), "starts": []})


def create_run_dir(root: str, name: str, suite: Optional[str] = None) -> str:
    """A new run folder under `root`, made by this call and marked: `name`, or `name-2`, `name-3` ... if
    taken. A suite cell (`suite`: its suite's id) gets exactly `root/name`, reusing it only when that
    suite made it and it holds no checkpoint."""
    if os.path.exists(root) and not os.path.isdir(root):  # the CLI's hint: point run.out_dir at a folder
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), root)
    os.makedirs(root, exist_ok=True)
    path, i = os.path.join(root, name), 2
    while True:
        try:
            os.mkdir(path)
        except FileExistsError:
            if suite is not None:
                _reuse_cell(path, suite)
                return path
            path, i = os.path.join(root, f"{name}-{i}"), i + 1
            continue
        _mark(path, suite)
        return path


def _reuse_cell(path: str, suite: str) -> None:
    """Check that suite `suite` made the cell folder `path` and that it holds no checkpoint; remove its
    earlier records. An empty folder (killed between mkdir and marker) is marked afresh."""
    if os.path.islink(path) or not os.path.isdir(path):
        raise ConfigError(f"{path} exists and is not a folder this suite made; move it away")
    refuse_links(path)
    if not os.listdir(path):
        _mark(path, suite)
        return
    marker = read_marker(path)
    if not marker or marker.get("suite_id") != suite:
        raise ConfigError(f"{path} exists and was not made by this suite (its {MARKER} names no or another suite): "
                          f"nothing is written into it; move it away or give the suite another folder")
    if os.path.exists(os.path.join(path, "checkpoint", "latest.json")):
        raise ConfigError(f"{path} already holds a checkpoint: continue it with spikeformers train resume={path}")
    for record in _RECORDS:  # a first epoch's line whose checkpoint was never written
        p = os.path.join(path, record)
        if os.path.isfile(p):
            os.unlink(p)
