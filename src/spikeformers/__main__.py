"""`python -m spikeformers ...` (what `torchrun -m spikeformers train ...` runs)."""
import sys

from .cli import main

sys.exit(main())
