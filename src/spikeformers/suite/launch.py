"""Launchers: run a suite's training commands on this machine's GPUs or CPU slots, on a Ray cluster, or
on Slurm through submitit. Every run is the same command line (`python -m spikeformers train ...`),
so a run launched anywhere is an ordinary run directory, and its output goes to a log file.

    LocalLauncher(jobs=2, gpus=[0, 1])          # two at a time, one GPU each (CUDA_VISIBLE_DEVICES)
    LocalLauncher(jobs=2, gpus=[])              # two CPU runs at a time (their threads: run.threads)
    RayLauncher(address=None)                   # ray.init() (a local runtime, or RAY_ADDRESS / the cluster)
    SlurmLauncher(folder, cluster="slurm")      # submitit; the suite folder must be on a shared filesystem

`run(jobs, done)` returns when every job has ended; `done(job, returncode)` is called as each ends
(from a worker thread: keep it short and thread-safe).
"""
from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

__all__ = ["Job", "LocalLauncher", "RayLauncher", "SlurmLauncher", "run_job", "create_launcher", "LAUNCHERS"]

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


def run_job(argv: List[str], log: str, env: Dict[str, str]) -> int:
    """Run one command with `env` added to the environment, output appended to `log`; its exit status."""
    os.makedirs(os.path.dirname(log) or ".", exist_ok=True)
    with open(log, "ab") as f:
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, **env})
        try:
            return proc.wait()
        except BaseException:  # interrupted: stop the run too (it saves nothing half-written: atomic files)
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
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

    def run(self, jobs: List[Job], done: Callable[[Job, int], None]) -> None:
        slots: "queue.Queue[int]" = queue.Queue()
        for i in range(self.jobs):
            slots.put(i)

        def one(job: Job) -> None:
            slot = slots.get()
            try:
                env = {**_thread_env(job.threads), **job.env}
                if self.gpus:
                    env["CUDA_VISIBLE_DEVICES"] = str(self.gpus[slot % len(self.gpus)])
                rc = run_job(job.argv, job.log, env)
            finally:
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
