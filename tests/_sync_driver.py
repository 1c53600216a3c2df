"""One rank of test_distributed.py::test_graph_step_sync_matches_ddp_semantics (gloo, file store):

    python tests/_sync_driver.py RANK WORLD STORE_FILE OUT_DIR

Builds `sync_model()`, perturbs it on ranks > 0, then runs what the engine does around a graphed step
under torchrun: `broadcast_module`, a backward on this rank's shard, `average_gradients`,
`broadcast_tensors` of the buffers. Saves the parameters, gradients and buffers it ends with.
"""
import os
import sys

import torch
import torch.distributed as tdist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_distributed import sync_batch, sync_loss, sync_model  # noqa: E402

from spikeformers.train.distributed import Distributed  # noqa: E402

rank, world, store, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
tdist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
try:
    dist = Distributed(rank, world, 0, torch.device("cpu"))
    model = sync_model()
    if rank:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
            for b in model.buffers():
                b.add_(7)
    dist.broadcast_module(model)
    x, y = sync_batch()
    sync_loss(model, x[rank::world], y[rank::world]).backward()
    dist.average_gradients(list(model.parameters()))
    for b in model.buffers():  # rank-specific buffers again: broadcast_tensors restores rank 0's
        b.add_(rank)
    dist.broadcast_tensors(list(model.buffers()))
    torch.save({"params": [p.detach() for p in model.parameters()], "grads": [p.grad for p in model.parameters()],
                "buffers": list(model.buffers())}, os.path.join(out, f"rank{rank}.pt"))
finally:
    tdist.destroy_process_group()
