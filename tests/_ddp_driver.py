"""Run under `torchrun --nproc_per_node=2` by test_distributed.py: two trainings in one launch (torchrun's
start-up is the expensive part on a CPU), per-rank BatchNorm then `run.sync_bn=true`.

    torchrun --nproc_per_node=2 tests/_ddp_driver.py OUT_DIR key=value ...
"""
import sys

from spikeformers.cli import main

out, overrides = sys.argv[1], sys.argv[2:]
for name, extra in (("plain", []), ("sync", ["run.sync_bn=true"])):
    rc = main(["train", "-q", *overrides, *extra, f"run.out_dir={out}/{name}"])
    if rc:
        sys.exit(rc)
