"""An exclusive lock on a run (or suite) folder for the life of the process that writes it.

Two processes training one run would interleave their records (metrics.jsonl twice, checkpoints named
epoch_0006-1 and -2). `FolderLock` takes an advisory `fcntl` lock on `<folder>/.lock` and writes its
PID there; a second process gets a one-line error naming the holder. The kernel releases the lock when
its holder dies, so a killed run leaves the file but no stale lock.
"""
from __future__ import annotations

import fcntl
import os

from ..errors import ConfigError

__all__ = ["FolderLock"]


class FolderLock:
    """`with FolderLock(folder, "training"):` ...; raises ConfigError if another process holds it."""

    def __init__(self, folder: str, what: str = "training"):
        self.folder, self.what = folder, what
        self.path = os.path.join(folder, ".lock")
        self.f = None

    def __enter__(self) -> "FolderLock":
        os.makedirs(self.folder, exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise ConfigError(f"{self.folder} is in use by {holder}: two processes writing one folder would interleave "
                              f"their records; wait for it to end or stop it") from None
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()} ({self.what})\n")
        f.flush()
        self.f = f
        return self

    def __exit__(self, *exc) -> None:
        if self.f is not None:
            fcntl.flock(self.f, fcntl.LOCK_UN)
            self.f.close()
            self.f = None
