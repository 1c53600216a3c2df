"""What every device loader shares: the epoch it draws (order and augmentation depend only on seed and
epoch, so a resume replays them) and its share of each global batch under data parallelism."""
from __future__ import annotations

__all__ = ["EpochShards"]


class EpochShards:
    """Mixin: `set_epoch(e)` before each epoch (like `DistributedSampler`), `set_shard(rank, world_size)`
    to yield only rows rank, rank + world_size, ... of every global batch."""

    epoch, rank, world_size = 0, 0, 1

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and augmentation the next iteration produces."""
        self.epoch = epoch

    def set_shard(self, rank: int, world_size: int) -> None:
        """Data parallelism: this rank's share of each global batch, drawn exactly as one process draws it."""
        if not 0 <= rank < world_size:
            raise ValueError(f"{type(self).__name__}: rank {rank} is not in [0, {world_size})")
        self.rank, self.world_size = rank, world_size
