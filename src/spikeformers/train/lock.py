"""An exclusive lock on a run (or suite) folder for the life of the process that writes it.

Two processes training one run would interleave their records (metrics.jsonl twice, checkpoints named
epoch_0006-1 and -2). `FolderLock` takes an advisory `fcntl` lock on `<folder>/.lock` and writes its
PID there; a second process gets a one-line error naming the holder. The kernel releases the lock when
its holder dies, so a killed run leaves the file but no stale lock.

The lock file is written in place, so it must be the folder's own: it is opened without following a
symbolic link (a run folder from elsewhere could point `.lock` at any file its reader can write) and
refused when it is not a regular file (a FIFO would block) or has another hard link (truncating it
would empty that file too). The folder itself must exist: the lock creates none.
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
from typing import Optional

from ..errors import ConfigError

__all__ = ["FolderLock", "lock_holder"]


def _open(path: str, flags: int) -> int:
    """A descriptor of the lock file, refused (one line) unless it is a plain file of its own."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ConfigError(f"{path} is a symbolic link, which spikeformers never makes: a folder from elsewhere "
                              f"can point it at any file; remove it") from None
        raise
    st = os.fstat(fd)
    why = ("is not a regular file" if not stat.S_ISREG(st.st_mode) else
           f"has {st.st_nlink - 1} other hard link(s)" if st.st_nlink != 1 else None)
    if why:
        os.close(fd)
        raise ConfigError(f"{path} {why}, so it is not a lock file spikeformers made; remove it")
    return fd


def lock_holder(folder: str) -> Optional[str]:
    """"process N (what)" while a process holds `folder`'s lock, else None (creates and changes nothing)."""
    path = os.path.join(folder, ".lock")
    try:
        fd = _open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: conflicts only with a holder
        except BlockingIOError:
            return os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class FolderLock:
    """`with FolderLock(folder, "training"):` ...; raises ConfigError if another process holds it."""

    def __init__(self, folder: str, what: str = "training"):
        self.folder, self.what = folder, what
        self.path = os.path.join(folder, ".lock")
        self.fd: Optional[int] = None

    def __enter__(self) -> "FolderLock":
        fd = _open(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise ConfigError(f"{self.folder} is in use by {holder}: two processes writing one folder would interleave "
                              f"their records; wait for it to end or stop it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} ({self.what})\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
