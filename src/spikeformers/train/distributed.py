"""Data parallelism under `torchrun` (PyTorch DDP): rank from the environment, only rank 0 writes.

`data.batch_size` is the global batch: each of the N ranks takes every N-th sample of the same
global batch, so a run on N GPUs sees the same data per step as a run on one.
"""
from __future__ import annotations

import datetime
import os
from typing import Optional

import torch
import torch.distributed as tdist
from torch import Tensor, nn

from ..errors import ConfigError

__all__ = ["Distributed"]


class Distributed:
    def __init__(self, rank: int = 0, world_size: int = 1, local_rank: int = 0, device: Optional[torch.device] = None):
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.device = device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device_spec: str = "auto") -> "Distributed":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = torch.cuda.is_available() and device_spec != "cpu"
        if use_cuda:
            torch.cuda.set_device(local)
            device = torch.device("cuda", local)
        else:
            device = torch.device("cpu")
        if not tdist.is_initialized():
            tdist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(minutes=10),
                                     **({"device_id": device} if use_cuda else {}))
        return cls(rank, world, local, device)

    def wrap(self, model: nn.Module) -> nn.Module:
        if self.world_size == 1:
            return model
        ids = [self.local_rank] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def shard(self, *loaders) -> None:
        if self.world_size == 1:
            return
        for loader in loaders:
            if loader.batch_size % self.world_size:
                raise ConfigError(f"batch size {loader.batch_size} is not divisible by the {self.world_size} ranks")
            loader.set_shard(self.rank, self.world_size)

    def sum(self, t: Tensor) -> Tensor:
        if self.world_size > 1:
            t = t.clone()
            tdist.all_reduce(t)
        return t

    def close(self) -> None:
        if self.world_size > 1 and tdist.is_initialized():
            tdist.barrier()
            tdist.destroy_process_group()
