"""run.cuda_graph: a graphed training step trains exactly like the eager one (GPU), and asking for it
where it cannot run is a clear error (CPU)."""
import pytest
import torch

from spikeformers import create_model
from spikeformers.errors import ConfigError
from spikeformers.kernels import triton_available
from spikeformers.train.config import load_config
from spikeformers.train.cuda_graph import GraphedStep
from spikeformers.train.engine import Trainer, train
from spikeformers.tasks.classify_loss import ClassificationLoss

needs_cuda = pytest.mark.skipif(not (torch.cuda.is_available() and triton_available()), reason="needs CUDA and triton")
TINY = dict(img_size=8, pooling="0001", dim=48, num_heads=4, depth=1, T=2)


def test_cuda_graph_on_cpu_is_a_config_error():
    cfg = load_config(None, ["run.cuda_graph=true", "run.device=cpu"])
    with pytest.raises(ConfigError, match="run.cuda_graph=true: it needs a CUDA device"):
        Trainer(cfg, progress=False)


def test_cuda_graph_setting_is_auto_by_default_and_reads_yaml_booleans(tmp_path):
    assert load_config(None).run.cuda_graph == "auto"
    assert load_config(None, ["run.cuda_graph=false"]).run.cuda_graph == "false"
    recipe = tmp_path / "r.yaml"
    recipe.write_text("run:\n  cuda_graph: true\n")
    assert load_config(str(recipe)).run.cuda_graph == "true"
    with pytest.raises(ConfigError, match="run.cuda_graph must be one of auto, true, false"):
        load_config(None, ["run.cuda_graph=sometimes"])


def test_auto_on_the_cpu_trains_eagerly(tmp_path):
    cfg = load_config(None, [f"run.out_dir={tmp_path}", "run.device=cpu", "run.max_steps=1", "schedule.epochs=1",
                             "model=spikformer_tiny", "data=digits", "data.batch_size=64"])
    t = Trainer(cfg, progress=False)
    assert not t.use_graph and t.graphed is None


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
    for graph in ("false", "auto"):  # auto: the default, graphed on CUDA
        cfg = load_config(None, [f"run.out_dir={tmp_path}", f"run.name=g{graph}", f"run.cuda_graph={graph}",
                                 "schedule.epochs=2", "run.amp=bf16"])
        runs.append(train(cfg, progress=False))
    assert runs[0]["cuda_graph"] is False and runs[1]["cuda_graph"] is True
    assert runs[1]["test_acc"] == pytest.approx(runs[0]["test_acc"], abs=0.02)
    assert runs[1]["test_loss"] == pytest.approx(runs[0]["test_loss"], rel=0.05)


class _Syncing(torch.nn.Module):
    """A model whose forward reads a value on the host: it cannot be captured."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.lin(x) * (1.0 if float(x.sum()) > -1e9 else 2.0)


@pytest.mark.gpu
@needs_cuda
def test_auto_falls_back_to_eager_when_the_capture_fails(capsys):
    torch.manual_seed(0)
    a, b = _Syncing().cuda(), _Syncing().cuda()
    b.load_state_dict(a.state_dict())
    x, y = torch.randn(8, 4, device="cuda"), torch.randint(0, 3, (8,), device="cuda")
    step = GraphedStep(a, torch.nn.functional.cross_entropy, fallback=True)
    for _ in range(2):
        loss, _ = step(x, y)
    assert step.eager and "training eagerly" in capsys.readouterr().err
    ref = torch.nn.functional.cross_entropy(b(x), y)  # a few-line eager step: the same gradients
    ref.backward()
    torch.testing.assert_close(loss, ref.detach())
    torch.testing.assert_close(a.lin.weight.grad, b.lin.weight.grad)
    with pytest.raises(RuntimeError, match="could not be captured"):
        GraphedStep(_Syncing().cuda(), torch.nn.functional.cross_entropy)(x, y)


class _Querying(torch.nn.Linear):
    """A model whose forward asks whether the stream is idle: not a synchronisation, but not capturable."""

    def forward(self, x):
        torch.cuda.current_stream().query()
        return torch.nn.functional.dropout(super().forward(x), 0.1)


@pytest.mark.gpu
@needs_cuda
def test_a_failed_capture_leaves_cuda_usable(capsys):
    step = GraphedStep(_Querying(4, 3).cuda(), torch.nn.functional.cross_entropy, fallback=True)
    x, y = torch.randn(8, 4, device="cuda"), torch.randint(0, 3, (8,), device="cuda")
    loss, _ = step(x, y)  # the capture fails; the random numbers of dropout still work afterwards
    assert step.eager and torch.isfinite(loss) and "training eagerly" in capsys.readouterr().err
    assert torch.rand(3, device="cuda").shape == (3,)


def _zoo_parts():
    from spikeformers.attention import ATTENTIONS
    from spikeformers.neurons.registry import NEURONS

    return [("attention", a) for a in ATTENTIONS.names()] + [("neuron", n) for n in NEURONS.names()]


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("part", _zoo_parts(), ids=lambda p: f"{p[0]}={p[1]}")
def test_every_attention_and_neuron_trains_graphed(part):
    """What run.cuda_graph=auto graphs by default: each attention and each neuron captures and replays."""
    torch.manual_seed(0)
    model = create_model("spikformer_tiny", img_size=8, in_chans=1, num_classes=10, **{part[0]: part[1]}).cuda()
    step = GraphedStep(model, ClassificationLoss(), torch.bfloat16, grad_clip=1.0)
    x, y = torch.rand(4, 1, 8, 8, device="cuda"), torch.randint(0, 10, (4,), device="cuda")
    losses = [float(step(x, y)[0]) for _ in range(3)]
    assert step.captures == 1 and all(torch.isfinite(torch.tensor(losses)))
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
