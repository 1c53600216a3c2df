"""Which suite folder (and which cells in it) a suite may write: the ones it made.

A suite folder is created by `os.mkdir` and gets its marker, `suite.json` with the suite's name and a
random id, before anything else; an existing folder is used only if its marker names the same suite, or
if it is empty. Every cell's run folder records that id in its own marker (`provenance.json`, written by
the training process, see `train/rundir.py`), and an existing cell folder without it is a one-line
error: a suite deletes nothing, and writes into no folder it did not make. A symbolic link anywhere in
the suite folder is refused too (spikeformers makes none).
"""
from __future__ import annotations

import os
import time
import uuid
from typing import Optional

from ..errors import ConfigError
from ..io import atomic_write_json
from ..train.rundir import MARKER, read_marker, refuse_links

__all__ = ["prepare_suite_folder", "suite_id", "check_cell_folder", "SUITE_MARKER"]

SUITE_MARKER = "suite.json"


def prepare_suite_folder(out: str, name: str, file: str) -> None:
    """Create `out` and mark it, or check that it is this suite's (or empty) and holds no link. Before the
    lock: it writes nothing into a folder it did not create."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    try:
        os.mkdir(out)
    except FileExistsError:
        if not os.path.isdir(out):
            raise ConfigError(f"{out} exists and is not a folder; give --out a folder") from None
        suite_id(out, name, file, write=False)
        refuse_links(out)
        return
    _mark(out, name, file)


def suite_id(out: str, name: str, file: str, write: bool = True) -> Optional[str]:
    """The id in `out`'s marker if it names suite `name`; an empty folder gets a new marker (`write`).
    Anything else is a one-line error naming the folder."""
    path = os.path.join(out, SUITE_MARKER)
    if os.path.islink(path):
        refuse_links(out)  # names the link
    marker = read_marker(out, SUITE_MARKER)
    if marker is not None and marker.get("id") and marker.get("suite") == name:
        return str(marker["id"])
    if marker is not None:
        whose = (f"suite {marker.get('suite')!r}" if marker.get("id") else
                 "a suite run by an older spikeformers (no suite id; `suite report` still reads it)")
        raise ConfigError(f"{out} holds {whose}, not suite {name!r}: give --out another folder")
    if set(os.listdir(out)) - {".lock"}:
        raise ConfigError(f"{out} is not a suite folder (no {SUITE_MARKER}) and is not empty: a suite writes only into "
                          f"a new or empty folder or its own; give --out another folder")
    return _mark(out, name, file) if write else None


def _mark(out: str, name: str, file: str) -> str:
    sid = uuid.uuid4().hex
    atomic_write_json(os.path.join(out, SUITE_MARKER), {"id": sid, "suite": name, "file": os.path.abspath(file),
                                                        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return sid


def check_cell_folder(folder: str, sid: str) -> None:
    """A one-line error unless the cell folder is absent, empty, or made by suite `sid`."""
    if not os.path.lexists(folder):
        return
    if os.path.islink(folder) or not os.path.isdir(folder):
        raise ConfigError(f"{folder} is not a folder this suite made; move it away or give --out another folder")
    if not os.listdir(folder):
        return
    marker = read_marker(folder, MARKER)
    if not marker or marker.get("suite_id") != sid:
        raise ConfigError(f"{folder} was not made by this suite (its {MARKER} names no or another suite): nothing is "
                          f"written into it; move it away or give --out another folder")
