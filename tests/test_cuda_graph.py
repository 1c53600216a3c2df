"""run.cuda_graph: a graphed training step trains exactly like the eager one (GPU), and asking for it
where it cannot run is a clear error (CPU)."""
import pytest
import torch

from spikeformers import create_model
from spikeformers.errors import ConfigError
from spikeformers.neurons.kernels import triton_available
from spikeformers.train.config import load_config
from spikeformers.train.cuda_graph import GraphedStep
from spikeformers.train.engine import Trainer, train
from spikeformers.train.loss import ClassificationLoss

needs_cuda = pytest.mark.skipif(not (torch.cuda.is_available() and triton_available()), reason="needs CUDA and triton")
TINY = dict(img_size=8, pooling="0001", dim=48, num_heads=4, depth=1, T=2)


def test_cuda_graph_on_cpu_is_a_config_error():
    cfg = load_config(None, ["run.cuda_graph=true", "run.device=cpu"])
    with pytest.raises(ConfigError, match="run.cuda_graph=true needs a CUDA device"):
        Trainer(cfg, progress=False)


def test_graphed_step_refuses_cpu_tensors():
    step = GraphedStep(create_model("spikformer_4_384", **TINY), ClassificationLoss())
    with pytest.raises(RuntimeError, match="CUDA graphs need CUDA tensors"):
        step(torch.rand(2, 3, 8, 8), torch.tensor([0, 1]))


def _train(graphed: bool, batches):
    torch.manual_seed(0)
    model = create_model("spikformer_4_384", **TINY).cuda().to(memory_format=torch.channels_last)
    loss_fn = ClassificationLoss(label_smoothing=0.1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    step = GraphedStep(model, loss_fn, torch.bfloat16, grad_clip=1.0)
    losses = []
    for x, y in batches:
        if graphed:
            loss, _ = step(x, y)
        else:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = model(x)
            loss = loss_fn(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss))
    return losses, model, step


@pytest.mark.gpu
@needs_cuda
def test_graphed_training_equals_eager():
    gen = torch.Generator(device="cuda").manual_seed(1)
    batches = [(torch.rand(8, 3, 8, 8, device="cuda", generator=gen), torch.randint(0, 10, (8,), device="cuda", generator=gen))
               for _ in range(4)]
    soft = torch.softmax(torch.randn(8, 10, device="cuda", generator=gen), -1)  # a new target dtype: recapture
    batches += [(batches[0][0], soft), (batches[1][0], batches[1][1])]
    eager, m_eager, _ = _train(False, batches)
    graphed, m_graphed, step = _train(True, batches)
    assert step.captures == 3  # first batch, soft targets, hard targets again
    torch.testing.assert_close(torch.tensor(graphed), torch.tensor(eager), rtol=1e-5, atol=1e-5)
    for (n, a), b in zip(m_graphed.state_dict().items(), m_eager.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=lambda s: f"{n}: {s}")


@pytest.mark.gpu
@needs_cuda
def test_engine_run_with_cuda_graph_matches_eager(tmp_path):
    runs = []
    for graph in (False, True):
        cfg = load_config(None, [f"run.out_dir={tmp_path}", f"run.name=g{int(graph)}", f"run.cuda_graph={graph}",
                                 "schedule.epochs=2", "run.amp=bf16"])
        runs.append(train(cfg, progress=False))
    assert runs[1]["test_acc"] == pytest.approx(runs[0]["test_acc"], abs=0.02)
    assert runs[1]["test_loss"] == pytest.approx(runs[0]["test_loss"], rel=0.05)
