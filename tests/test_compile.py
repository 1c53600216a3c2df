"""torch.compile sees a Spikformer training step as one graph: no graph break in the model, on the CPU
(reference neurons) and on CUDA (fused-kernel custom ops)."""
import pytest
import torch
import torch.nn.functional as F

from spikeformers import create_model
from spikeformers.kernels import triton_available

# spikformer_4_384's code paths (SPS, SSA, MLP, head) at a size Dynamo traces in seconds
TINY = dict(img_size=8, pooling="0001", dim=48, num_heads=4, depth=1, T=2)


def _explain(model, x):
    torch._dynamo.reset()
    ex = torch._dynamo.explain(model)(x)
    return ex.graph_count, ex.graph_break_count, [str(b.reason)[:200] for b in ex.break_reasons]


def test_spikformer_forward_is_one_graph_on_cpu():
    model = create_model("spikformer_4_384", **TINY)
    graphs, breaks, reasons = _explain(model, torch.rand(2, 3, 8, 8))
    assert (graphs, breaks) == (1, 0), reasons


@pytest.mark.gpu
@pytest.mark.skipif(not (torch.cuda.is_available() and triton_available()), reason="needs CUDA and triton")
@pytest.mark.parametrize("neuron,attention", [("lif", "ssa"), ("plif", "a2os2a")])
def test_compiled_training_step_with_kernels(neuron, attention):
    torch.manual_seed(0)
    model = create_model("spikformer_4_384", neuron=neuron, attention=attention, **TINY).cuda()
    x, y = torch.rand(4, 3, 8, 8, device="cuda"), torch.randint(0, 10, (4,), device="cuda")
    graphs, breaks, reasons = _explain(model, x)
    assert (graphs, breaks) == (1, 0), reasons
    eager = F.cross_entropy(model(x), y)
    eager.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    loss = F.cross_entropy(compiled(x), y)
    loss.backward()
    torch.testing.assert_close(loss, eager)
    for p, g in zip(model.parameters(), grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)
