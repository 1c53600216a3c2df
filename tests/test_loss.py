"""Losses: soft-target cross-entropy and label smoothing against PyTorch, TET against its formula."""
import pytest
import torch
import torch.nn.functional as F

from spikeformers.train import load_config
from spikeformers.train.loss import ClassificationLoss, create_loss, soft_cross_entropy


def logits_and_labels(T=None, B=6, C=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (B, C) if T is None else (T, B, C)
    return torch.randn(*shape, generator=g, dtype=torch.float64), torch.randint(0, C, (B,), generator=g)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_one_hot_soft_targets_equal_hard_labels(eps):
    logits, y = logits_and_labels()
    hard = soft_cross_entropy(logits, y, eps)
    soft = soft_cross_entropy(logits, F.one_hot(y, 5).double(), eps)
    ref = F.cross_entropy(logits, y, label_smoothing=eps)
    torch.testing.assert_close(hard, ref)
    torch.testing.assert_close(soft, ref)


def test_soft_targets_are_the_weighted_sum_of_hard_losses():
    logits, y = logits_and_labels()
    y2 = y.flip(0)
    lam = 0.3
    target = lam * F.one_hot(y, 5).double() + (1 - lam) * F.one_hot(y2, 5).double()
    want = lam * F.cross_entropy(logits, y, label_smoothing=0.1) + (1 - lam) * F.cross_entropy(logits, y2, label_smoothing=0.1)
    torch.testing.assert_close(soft_cross_entropy(logits, target, 0.1), want)


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("lam", [0.0, 0.001, 0.2])
def test_tet_matches_its_formula(soft, lam):
    logits, y = logits_and_labels(T=4)
    target = F.one_hot(y, 5).double() * 0.7 + 0.3 / 5 if soft else y
    loss = ClassificationLoss(label_smoothing=0.1, tet=True, tet_lambda=lam, tet_means=1.0)
    assert loss.per_step
    per_t = sum(soft_cross_entropy(logits[t], target, 0.1) for t in range(4)) / 4  # mean_t CE(O_t, y)
    mse = ((logits - 1.0) ** 2).mean()
    torch.testing.assert_close(loss(logits, target), (1 - lam) * per_t + lam * mse)


def test_tet_gradient_reaches_every_step_and_needs_per_step_logits():
    logits, y = logits_and_labels(T=3)
    logits.requires_grad_(True)
    ClassificationLoss(tet=True)(logits, y).backward()
    assert torch.all(logits.grad.abs().sum((1, 2)) > 0)
    with pytest.raises(ValueError, match=r"\[T, B, classes\]"):
        ClassificationLoss(tet=True)(logits.detach()[0], y)


def test_create_loss_reads_the_config():
    cfg = load_config(None, ["optim.tet=true", "optim.tet_lambda=0.05", "optim.label_smoothing=0.2"])
    loss = create_loss(cfg)
    assert (loss.tet, loss.tet_lambda, loss.tet_means, loss.label_smoothing) == (True, 0.05, 1.0, 0.2)
    assert not create_loss(load_config(None, [])).per_step
    with pytest.raises(ValueError):
        ClassificationLoss(label_smoothing=1.0)
