"""Launchers: run a suite's training commands on this machine's GPUs or CPU slots, on a Ray cluster, or
on Slurm through submitit. Every run is the same command line (`python -m spikeformers train ...`),
so a run launched anywhere is an ordinary run directory, and its output goes to a log file.

    LocalLauncher(jobs=2, gpus=[0, 1])          # two at a time, one GPU each (CUDA_VISIBLE_DEVICES)
    LocalLauncher(jobs=2, gpus=[])              # two CPU runs at a time (their threads: run.threads)
    RayLauncher(address=None)                   # ray.init() (a local runtime, or RAY_ADDRESS / the cluster)
    SlurmLauncher(folder, cluster="slurm")      # submitit; the suite folder must be on a shared filesystem

`run(jobs, done)` returns when every job has ended; `done(job, returncode)` is called as each ends
(from a worker thread: keep it short and thread-safe). `stop()` (from another thread) starts no more
jobs and sends the running ones SIGINT, as a Ctrl-C: a run saves where it is and exits; `stop(force=True)`
kills them.

Every run is a process group of its own (a terminal's Ctrl-C reaches only the suite, which passes one
SIGINT on) and, on Linux, gets SIGTERM when the thread that started it dies (prctl PR_SET_PDEATHSIG), so
a killed suite leaves no run training on alone. A training run takes SIGTERM as one Ctrl-C (it saves
and stops) and ignores its repeats: a killed multi-threaded parent sends one per thread that dies.
"""
from __future__ import annotations

import ctypes
import errno
import os
import queue
import signal
import stat
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from ..errors import ConfigError

__all__ = ["Job", "LocalLauncher", "RayLauncher", "SlurmLauncher", "run_job", "stop_process", "create_launcher",
           "LAUNCHERS"]

LAUNCHERS = ("local", "ray", "slurm")


@dataclass
class Job:
    """One run: its name, the command, its log file, and what it needs."""

    name: str
    argv: List[str]
    log: str
    threads: int = 1
    gpus: float = 0.0
    env: Dict[str, str] = field(default_factory=dict)


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Optional[Callable[[], None]]:
    """A preexec_fn that makes the child get SIGTERM when its parent thread dies (Linux; None elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    parent = os.getpid()

    def setup() -> None:  # in the child, between fork and exec: no allocation-heavy work here
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(143)

    return setup


def _open_log(log: str) -> int:
    """The log file for appending: our own regular file, never followed through a link."""
    os.makedirs(os.path.dirname(log) or ".", exist_ok=True)
    try:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ConfigError(f"{log} is a symbolic link, which spikeformers never makes; remove it") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        raise ConfigError(f"{log} is not a plain file of its own (a link or a special file); remove it")
    return fd


def stop_process(proc: subprocess.Popen, force: bool = False) -> None:
    """SIGINT (a run saves and exits) or SIGKILL to a running child; nothing if it has ended."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGKILL if force else signal.SIGINT)
        except ProcessLookupError:
            pass


def run_job(argv: List[str], log: str, env: Dict[str, str],
            on_start: Optional[Callable[[subprocess.Popen], None]] = None) -> int:
    """Run one command with `env` added to the environment, output appended to `log`; its exit status.
    `on_start(proc)` is called once the process runs (to stop it from elsewhere)."""
    fd = _open_log(log)
    try:
        proc = subprocess.Popen(argv, stdout=fd, stderr=subprocess.STDOUT, env={**os.environ, **env},
                                start_new_session=True, preexec_fn=_die_with_parent())
    finally:
        os.close(fd)
    if on_start is not None:
        on_start(proc)
    try:
        return proc.wait()
    except BaseException:  # interrupted here (a cancelled Ray task): the run saves where it is, then stops
        stop_process(proc)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            stop_process(proc, force=True)
        raise


def _thread_env(threads: int) -> Dict[str, str]:
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


class LocalLauncher:
    """`jobs` runs at a time on this machine; with GPUs, slot i runs on GPU gpus[i % len(gpus)]."""

    name = "local"

    def __init__(self, jobs: int, gpus: Optional[List[int]] = None):
        if jobs < 1:
            raise ValueError(f"the local launcher needs jobs >= 1, got {jobs}")
        self.jobs, self.gpus = jobs, list(gpus or [])
        self._lock = threading.Lock()
        self._running: Dict[str, subprocess.Popen] = {}
        self._stopped = False

    def stop(self, force: bool = False) -> None:
        with self._lock:
            self._stopped = True
            for proc in self._running.values():
                stop_process(proc, force)

    def run(self, jobs: List[Job], done: Callable[[Job, int], None]) -> None:
        slots: "queue.Queue[int]" = queue.Queue()
        for i in range(self.jobs):
            slots.put(i)

        def one(job: Job) -> None:
            slot = slots.get()

            def started(proc: subprocess.Popen) -> None:
                with self._lock:
                    self._running[job.name] = proc
                    if self._stopped:  # stopped while it was starting
                        stop_process(proc)

            try:
                if self._stopped:
                    return
                env = {**_thread_env(job.threads), **job.env}
                if self.gpus:
                    env["CUDA_VISIBLE_DEVICES"] = str(self.gpus[slot % len(self.gpus)])
                rc = run_job(job.argv, job.log, env, on_start=started)
            finally:
                with self._lock:
                    self._running.pop(job.name, None)
                slots.put(slot)
            done(job, rc)

        with ThreadPoolExecutor(self.jobs) as pool:
            for f in [pool.submit(one, j) for j in jobs]:
                f.result()


class RayLauncher:
    """One Ray task per run (num_cpus = its threads, num_gpus = its GPUs); Ray places them on the cluster.

    Connects with `ray.init(address)`: None starts a local runtime unless RAY_ADDRESS names a cluster,
    or reuses the runtime the caller already started (as the tests do)."""

    name = "ray"

    def __init__(self, address: Optional[str] = None):
        self.address = address
        self._refs: list = []

    def stop(self, force: bool = False) -> None:
        import ray

        for r in list(self._refs):  # a cancelled task passes SIGINT on to its run (run_job)
            ray.cancel(r, force=force)

    def run(self, jobs: List[Job], done: Callable[[Job, int], None]) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError("--launcher ray needs Ray: pip install 'ray[default]'") from None
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        task = ray.remote(run_job)
        refs = {task.options(num_cpus=j.threads, num_gpus=j.gpus).remote(j.argv, j.log, {**_thread_env(j.threads), **j.env}): j
                for j in jobs}
        self._refs = list(refs)
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for r in ready:
                done(refs.pop(r), int(ray.get(r)))


class SlurmLauncher:
    """One submitit job per run. `cluster="slurm"` submits to Slurm (partition and time limit from
    `slurm_args`); `cluster="local"` runs the same jobs as local processes (for trying a suite out)."""

    name = "slurm"

    def __init__(self, folder: str, cluster: str = "slurm", timeout_min: int = 24 * 60, **slurm_args):
        self.folder, self.cluster, self.timeout_min, self.slurm_args = folder, cluster, timeout_min, slurm_args
        self._pending: list = []

    def stop(self, force: bool = False) -> None:
        for fut, _ in self._pending:  # Slurm signals the job; its run gets SIGTERM as its parent dies
            fut.cancel(check=False)

    def run(self, jobs: List[Job], done: Callable[[Job, int], None]) -> None:
        try:
            import submitit
        except ImportError:
            raise ValueError("--launcher slurm needs submitit: pip install submitit") from None
        ex = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster)
        pending = []
        for j in jobs:
            ex.update_parameters(timeout_min=self.timeout_min, cpus_per_task=j.threads, gpus_per_node=int(j.gpus),
                                 name=j.name, **self.slurm_args)
            pending.append((ex.submit(run_job, j.argv, j.log, {**_thread_env(j.threads), **j.env}), j))
            self._pending = pending
        lock = threading.Lock()
        for fut, j in pending:
            rc = fut.result()
            with lock:
                done(j, int(rc))


def create_launcher(name: str, *, jobs: int, gpus: List[int], folder: str, ray_address: Optional[str] = None):
    if name == "local":
        return LocalLauncher(jobs, gpus)
    if name == "ray":
        return RayLauncher(ray_address)
    if name == "slurm":
        return SlurmLauncher(os.path.join(folder, ".slurm"))
    raise ValueError(f"unknown launcher {name!r}; valid launchers: {', '.join(LAUNCHERS)}")


def python_argv(*args: str) -> List[str]:
    """The command that runs `spikeformers ARGS` with this interpreter."""
    return [sys.executable, "-m", "spikeformers", *args]
