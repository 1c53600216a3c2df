"""`make_step` in a user's own loop: on the CPU it trains exactly as the plain PyTorch loop written here."""
import pytest
import torch
import torch.nn.functional as F

from spikeformers import create_model
from spikeformers.data import create_dataset
from spikeformers.errors import ConfigError
from spikeformers.train import make_step


def test_make_step_equals_a_plain_loop_on_the_cpu():
    ds = create_dataset("digits")
    x, y = ds.train_x[:32].float() / 255, ds.train_y[:32]
    torch.manual_seed(0)
    a = create_model("spikformer_tiny", img_size=8, in_chans=1, num_classes=10)
    b = create_model("spikformer_tiny", img_size=8, in_chans=1, num_classes=10)
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = torch.optim.AdamW(a.parameters(), lr=1e-3), torch.optim.AdamW(b.parameters(), lr=1e-3)
    step = make_step(a, opt_a, grad_clip=1.0)
    assert step.graphed is False  # no CUDA: the eager path
    for _ in range(3):
        loss_a = step(x, y)
        opt_b.zero_grad()
        b.train()
        loss_b = F.cross_entropy(b(x), y)
        loss_b.backward()
        torch.nn.utils.clip_grad_norm_(b.parameters(), 1.0)
        opt_b.step()
        assert loss_a.item() == pytest.approx(loss_b.item(), rel=1e-6)
    for (n, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6, msg=n)


def test_make_step_refuses_a_graph_without_cuda():
    model = create_model("spikformer_tiny", img_size=8, in_chans=1, num_classes=10)
    with pytest.raises(ConfigError, match="cuda_graph=True needs the model on a CUDA device"):
        make_step(model, torch.optim.SGD(model.parameters(), lr=0.1), cuda_graph=True)
    with pytest.raises(ConfigError, match="cuda_graph must be"):
        make_step(model, torch.optim.SGD(model.parameters(), lr=0.1), cuda_graph="yes")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_graphed_make_step_follows_the_eager_one_on_a_gpu():
    ds = create_dataset("digits")
    x, y = (ds.train_x[:32].float() / 255).cuda(), ds.train_y[:32].cuda()
    torch.manual_seed(0)
    a = create_model("spikformer_tiny", img_size=8, in_chans=1, num_classes=10).cuda()
    b = create_model("spikformer_tiny", img_size=8, in_chans=1, num_classes=10).cuda()
    b.load_state_dict(a.state_dict())
    graphed = make_step(a, torch.optim.AdamW(a.parameters(), lr=1e-3))
    eager = make_step(b, torch.optim.AdamW(b.parameters(), lr=1e-3), cuda_graph=False)
    assert graphed.graphed and not eager.graphed
    for _ in range(3):
        torch.testing.assert_close(graphed(x, y), eager(x, y), rtol=1e-4, atol=1e-5)
