"""Where dataset files are looked for, where derived arrays are cached, and the missing-file message.

Files of a dataset are looked for in (the first folder holding them wins):
  1. `root` when given (`data.root=...`), and only there;
  2. `$SPIKEFORMERS_DATA/<subdir>` when the environment variable `SPIKEFORMERS_DATA` is set;
  3. the dataset's default folder (e.g. `/usr/share/datasets/fashion-mnist`, Debian's package).

Arrays derived from slow sources (generated MNIST-1D, integrated event frames) are cached under
`$SPIKEFORMERS_CACHE`, else `$XDG_CACHE_HOME/spikeformers`, else `~/.cache/spikeformers`, in files
named by a hash of everything they depend on; deleting them is always safe.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ..errors import DatasetError

__all__ = ["candidate_folders", "first_folder_with", "cache_dir", "cache_key", "files_fingerprint", "cached_arrays"]


def candidate_folders(root: Optional[str], subdir: str, default: str) -> List[Path]:
    """The folders searched for a dataset's files, in order (see the module docstring)."""
    if root is not None:
        return [Path(root).expanduser()]
    folders = []
    env = os.environ.get("SPIKEFORMERS_DATA")
    if env:
        folders.append(Path(env).expanduser() / subdir)
    folders.append(Path(default).expanduser())
    return folders


def first_folder_with(name: str, folders: Sequence[Path], has: Callable[[Path], Optional[str]], hint: str) -> Path:
    """The first folder for which `has(folder)` returns None (nothing missing).

    Otherwise raise a one-line `DatasetError`: what is missing from the first folder, the other
    folders searched, and `hint` (how to get the data).
    """
    for f in folders:
        if f.is_dir() and has(f) is None:
            return f
    first = folders[0]
    state = "" if first.is_dir() else " (folder missing)"
    others = "".join(f", nor in {f}" for f in folders[1:])
    raise DatasetError(f"{name}: expected {has(first)} in {first}{state}{others}; {hint}")


def cache_dir() -> Path:
    """The cache folder (see the module docstring); not created here."""
    env = os.environ.get("SPIKEFORMERS_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "spikeformers"


def cache_key(**parts: Any) -> str:
    """A short stable hash of JSON-serialisable `parts` (sorted keys)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def files_fingerprint(files: Sequence[Path]) -> str:
    """A hash of the files' absolute paths, sizes and modification times (a cache key part)."""
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def cached_arrays(path: Path, build: Callable[[], Dict[str, np.ndarray]], use_cache: bool = True) -> Dict[str, np.ndarray]:
    """`build()` once and keep its arrays in the `.npz` file `path`; later calls read the file.

    The file is written atomically (temporary file + rename). An unreadable cache file is rebuilt;
    an unwritable cache folder only costs the rebuild next time.
    """
    if use_cache and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError):
            pass  # corrupt or partial: rebuild below
    arrays = build()
    if use_cache:
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
            tmp = None
        except OSError:
            pass
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
    return arrays
