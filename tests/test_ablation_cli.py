"""The attention ablation from the command line: the same digits recipe with each attention trains a few
steps and writes its summary (issue 3). The full-length ablation is in docs/ablation.md."""
import json

import pytest

from spikeformers.cli import main

ATTENTIONS = ["ssa", "a2os2a", "sdsa", "qk_token", "bipolar", "semm", "adaptive"]


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_digits_recipe_trains_with_each_attention(attention, tmp_path):
    args = ["train", f"attention={attention}", "epochs=1", "run.max_steps=3", "model.dim=32",
            "data.batch_size=128", f"run.out_dir={tmp_path}", f"name={attention}", "-q"]
    assert main(args) == 0
    s = json.load(open(tmp_path / attention / "summary.json"))
    assert s["model_args"]["attention"] == attention and s["test_images"] == 360 and s["firing_rates"]
