"""`spikeformers bench lm` as a script (see src/spikeformers/bench/lm.py; --help lists the options)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from spikeformers.speed.lm import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
