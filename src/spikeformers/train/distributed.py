"""Data parallelism under `torchrun` (PyTorch DDP): rank from the environment, only rank 0 writes.

`data.batch_size` is the global batch: each of the N ranks takes every N-th sample of the same
global batch (augmented as one process would augment it), so a run on N GPUs sees the same data per
step as a run on one. BatchNorm statistics are per rank unless `run.sync_bn` makes them span the
global batch (then N ranks follow one rank's computation up to rounding).

    torchrun --nproc_per_node=2 -m spikeformers train [CONFIG.yaml] [key=value ...]
"""
from __future__ import annotations

import datetime
import os
from typing import Any, Dict, List, Optional

import torch
import torch.distributed as tdist
from torch import Tensor, nn

from ..errors import ConfigError
from ..attention.base import unused_parameter_names

__all__ = ["Distributed", "AllReduceBatchNorm", "convert_sync_batchnorm", "is_main_process"]


def is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a plain single process (reads the environment only)."""
    return int(os.environ.get("RANK", "0")) == 0


class Distributed:
    def __init__(self, rank: int = 0, world_size: int = 1, local_rank: int = 0, device: Optional[torch.device] = None,
                 owns_group: bool = False):
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.device = device
        self.owns_group = owns_group  # created the process group, so `close` destroys it

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
        owns = not tdist.is_initialized()  # a caller's group (several trainings in one job) is left to it
        if owns:
            tdist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(minutes=10),
                                     **({"device_id": device} if use_cuda else {}))
        return cls(rank, world, local, device, owns_group=owns)

    def wrap(self, model: nn.Module) -> nn.Module:
        """DDP around `model`. A model whose modules declare `unused_parameters` (kept for checkpoint
        parity, skipped by forward) that still require grad gets `find_unused_parameters=True`; frozen
        ones (SDT's talking heads) need nothing, DDP ignores them."""
        if self.world_size == 1:
            return model

        ids = [self.local_rank] if self.device.type == "cuda" else None
        params = dict(model.named_parameters())
        unused = any(params[n].requires_grad for n in unused_parameter_names(model) if n in params)
        return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=unused,
                                                   gradient_as_bucket_view=True)

    # --- what DDP does, for a step replayed as a CUDA graph (DDP's hooks cannot be captured) ---------
    def broadcast_module(self, model: nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank (what DDP's constructor does)."""
        self.broadcast_tensors([t.data for t in model.parameters()] + list(model.buffers()))

    def broadcast_tensors(self, tensors: List[Tensor]) -> None:
        """Rank 0's values of `tensors`, in place, with one broadcast per dtype (DDP broadcasts the
        BatchNorm buffers before every forward; this is that, for a graphed step)."""
        if self.world_size == 1:
            return
        for group in _by_dtype(tensors):
            flat = torch.cat([t.reshape(-1) for t in group])
            tdist.broadcast(flat, src=0)
            _unflatten_into(flat, group)

    def average_gradients(self, params: List[Tensor]) -> None:
        """Every rank's `.grad` becomes the mean over ranks (DDP's all-reduce), one all-reduce per dtype."""
        if self.world_size == 1:
            return
        grads = [p.grad for p in params if p.grad is not None]
        for group in _by_dtype(grads):
            flat = torch.cat([g.reshape(-1) for g in group])
            tdist.all_reduce(flat)
            _unflatten_into(flat.div_(self.world_size), group)

    def convert_sync_bn(self, model: nn.Module) -> nn.Module:
        """BatchNorm over the global batch: torch's SyncBatchNorm on CUDA, `AllReduceBatchNorm` elsewhere."""
        if self.world_size == 1:
            return model
        if self.device.type == "cuda":
            return nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return convert_sync_batchnorm(model)

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

    def any(self, flag: Tensor) -> bool:
        """True on every rank if `flag` (a bool tensor) is true on any rank (one all-reduce)."""
        if self.world_size == 1:
            return bool(flag)
        t = flag.to(torch.int32).reshape(1)
        tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
        return bool(t)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's value of a picklable object, on every rank."""
        if self.world_size == 1:
            return obj
        box = [obj]
        tdist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_objects(self, obj: tuple) -> tuple:
        """Every rank's `obj` (a tuple of lists and numbers) merged on every rank: lists concatenated in rank
        order, numbers added (metrics that are not sums, such as COCO mAP, need every sample)."""
        if self.world_size == 1:
            return obj
        parts: List[Any] = [None] * self.world_size
        tdist.all_gather_object(parts, obj)
        return tuple(sum((p[i] for p in parts), [] if isinstance(obj[i], list) else 0) for i in range(len(obj)))

    def close(self) -> None:
        if self.world_size > 1 and tdist.is_initialized():
            tdist.barrier()
            if self.owns_group:
                tdist.destroy_process_group()


def _by_dtype(tensors: List[Tensor]) -> List[List[Tensor]]:
    groups: Dict[torch.dtype, List[Tensor]] = {}
    for t in tensors:
        groups.setdefault(t.dtype, []).append(t)
    return list(groups.values())


def _unflatten_into(flat: Tensor, tensors: List[Tensor]) -> None:
    """Copy consecutive pieces of `flat` into `tensors` (any strides: each piece is read in logical order)."""
    views = [v.view(t.shape) for v, t in zip(flat.split([t.numel() for t in tensors]), tensors)]
    torch._foreach_copy_(tensors, views)


class AllReduceBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics span all ranks: per-channel sum, sum of squares and count
    are all-reduced (with gradient) before normalising. For backends where torch's SyncBatchNorm
    cannot run (CPU / gloo); eval mode and single processes are plain BatchNorm."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input [N, C, ...], got {x.dim()}-D")

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        if not (self.training and tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        C = x.shape[1]
        dims = [0] + list(range(2, x.dim()))
        xf = x.float()
        local = torch.cat([xf.sum(dims), (xf * xf).sum(dims), xf.new_full((1,), x.numel() / C)])
        stats = all_reduce(local)  # differentiable: the backward all-reduces the gradient
        count = stats[2 * C]
        mean = stats[:C] / count
        var = (stats[C:2 * C] / count - mean * mean).clamp_min(0.0)  # biased, as BatchNorm normalises
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_((var * count / (count - 1).clamp_min(1)).detach(), m)
        shape = [1, C] + [1] * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm1d/2d/3d in `module` by an `AllReduceBatchNorm` holding the same state."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, AllReduceBatchNorm):
        new = AllReduceBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                 module.track_running_stats).to(next(iter(module.state_dict().values())).device)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child))
    return module

