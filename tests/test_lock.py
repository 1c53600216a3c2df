"""The folder lock writes only its own regular file: a symbolic link, a hard link to another file or a
FIFO planted at `.lock` is refused with one line and left as it was; a holder is named and probed."""
import os

import pytest

from spikeformers.errors import ConfigError
from spikeformers.train.lock import FolderLock, lock_holder


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "victim.txt"
    path.write_text("precious\n")
    return path


def test_a_symlinked_lock_is_refused_and_its_target_untouched(tmp_path, victim):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").symlink_to(victim)
    with pytest.raises(ConfigError, match=r"\.lock is a symbolic link") as e:
        with FolderLock(str(run)):
            pass
    assert "\n" not in str(e.value)
    assert victim.read_text() == "precious\n" and os.readlink(run / ".lock") == str(victim)


def test_a_dangling_symlinked_lock_creates_nothing_at_its_target(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").symlink_to(tmp_path / "made_by_us")
    with pytest.raises(ConfigError, match="symbolic link"):
        with FolderLock(str(run)):
            pass
    assert not (tmp_path / "made_by_us").exists()


def test_a_hard_link_to_another_file_is_not_truncated(tmp_path, victim):
    run = tmp_path / "run"
    run.mkdir()
    os.link(victim, run / ".lock")
    with pytest.raises(ConfigError, match="other hard link"):
        with FolderLock(str(run)):
            pass
    assert victim.read_text() == "precious\n"


def test_a_fifo_at_the_lock_is_refused_without_hanging(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / ".lock")
    with pytest.raises(ConfigError, match="not a regular file"):
        with FolderLock(str(run)):
            pass


def test_the_lock_names_its_holder_and_the_probe_sees_it(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    assert lock_holder(str(run)) is None  # no lock file: nobody
    with FolderLock(str(run), "suite"):
        assert (run / ".lock").read_text() == f"process {os.getpid()} (suite)\n"
        assert lock_holder(str(run)) == f"process {os.getpid()} (suite)"
        with pytest.raises(ConfigError, match=f"in use by process {os.getpid()} \\(suite\\)"):
            with FolderLock(str(run), "training"):
                pass
    assert lock_holder(str(run)) is None  # released: the file stays, the lock does not
    (run / ".lock").write_text("process 999999 (training)\n")  # left by a killed process
    with FolderLock(str(run)):
        assert (run / ".lock").read_text() == f"process {os.getpid()} (training)\n"


def test_the_lock_needs_its_folder_and_creates_none(tmp_path):
    with pytest.raises(FileNotFoundError):
        with FolderLock(str(tmp_path / "missing")):
            pass
    assert not (tmp_path / "missing").exists()
