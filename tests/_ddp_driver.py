"""Run under `torchrun --nproc_per_node=2` by test_distributed.py: two trainings in one launch (torchrun's
start-up is the expensive part on a CPU), per-rank BatchNorm then `run.sync_bn=true`. The process
group is created here and outlives both trainings (the engine leaves a caller's group alone).

    torchrun --nproc_per_node=2 tests/_ddp_driver.py OUT_DIR key=value ...
"""
import datetime
import sys

import torch.distributed as dist

from spikeformers.cli import main

out, overrides = sys.argv[1], sys.argv[2:]
dist.init_process_group("gloo", timeout=datetime.timedelta(minutes=5))
try:
    for name, extra in (("plain", []), ("sync", ["run.sync_bn=true"])):
        rc = main(["train", "-q", *overrides, *extra, f"run.out_dir={out}/{name}"])
        if rc:
            sys.exit(rc)
finally:
    dist.destroy_process_group()
