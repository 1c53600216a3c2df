"""`InferenceGraph` (models/inference.py): the model's own forward wherever a graph does not apply (CPU, grad
on, training mode, hooks), and on a GPU the replayed graph gives the eager forward's outputs."""
import pytest
import torch

from spikeformers import create_model
from spikeformers.models.inference import InferenceGraph
from spikeformers.neurons.monitor import FiringRateMonitor

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_on_the_cpu_it_is_the_model_itself():
    model = create_model("spikformer_tiny").eval()
    fwd = InferenceGraph(model)
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(fwd(x), model(x))
    assert not fwd.graphs


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("name,shape", [("spikformer_tiny", (5, 1, 8, 8)), ("qkformer_tiny", (4, 1, 8, 8))])
def test_replay_equals_the_eager_forward(name, shape):
    torch.manual_seed(0)
    model = create_model(name).cuda().to(memory_format=torch.channels_last).eval()
    fwd = InferenceGraph(model)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        for i in range(3):
            x = torch.rand(shape, device="cuda")
            assert torch.equal(fwd(x), model(x)), i
        x = torch.rand((2,) + shape[1:], device="cuda")  # the last, shorter batch: its own graph
        assert torch.equal(fwd(x), model(x))
    assert len(fwd.graphs) == 2


@pytest.mark.gpu
@gpu
def test_no_graph_with_grad_training_mode_or_hooks():
    model = create_model("spikformer_tiny").cuda().eval()
    fwd = InferenceGraph(model)
    x = torch.rand(2, 1, 8, 8, device="cuda")
    fwd(x)  # grad enabled
    with torch.no_grad():
        with FiringRateMonitor(model) as mon:
            fwd(x)
        assert mon.rates()
        model.train()
        fwd(x)
    assert not fwd.graphs
