"""Losses: soft-target cross-entropy and label smoothing against PyTorch, TET against its formula."""
import pytest
import torch
import torch.nn.functional as F

from spikeformers.train import load_config
from spikeformers.tasks import create_task
from spikeformers.tasks.classify_loss import ClassificationLoss, soft_cross_entropy


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


def classify_loss(cfg):
    return create_task("classify", cfg, **cfg.task.options).loss(None)


def test_the_classification_task_builds_its_loss_from_its_options():
    cfg = load_config(None, ["task.options.tet=true", "task.options.tet_lambda=0.05", "task.options.label_smoothing=0.2"])
    loss = classify_loss(cfg)
    assert (loss.tet, loss.tet_lambda, loss.tet_means, loss.label_smoothing) == (True, 0.05, 1.0, 0.2)
    assert not classify_loss(load_config(None, [])).per_step
    assert classify_loss(load_config(None, [])).label_smoothing == 0.1  # the default the optim key had
    with pytest.raises(ValueError):
        ClassificationLoss(label_smoothing=1.0)


def test_the_old_optim_keys_still_work_with_a_one_line_note(capsys):
    cfg = load_config(None, ["optim.tet=true", "optim.tet_lambda=0.05", "optim.label_smoothing=0.2", "optim.mixup=0.0"])
    assert cfg.task.options == {"tet": True, "tet_lambda": 0.05, "label_smoothing": 0.2}  # mixup 0.0: the default
    loss = classify_loss(cfg)
    assert (loss.tet, loss.tet_lambda, loss.label_smoothing) == (True, 0.05, 0.2)
    err = capsys.readouterr().err
    assert all(len(line) < 120 for line in err.splitlines())
    assert "optim.tet_lambda is now task.options.tet_lambda" in err or "tet_lambda" not in err  # noted once per process


def test_a_moved_option_a_task_never_took_is_dropped_and_others_are_errors():
    from spikeformers.errors import ConfigError
    from spikeformers.train.run import build_task

    class Tokens:
        kind, name, task = "tokens", "gcide", "lm"

    cfg = load_config(None, ["data=gcide", "optim.mixup=0.5", "optim.label_smoothing=0.0"])
    task = build_task(cfg, Tokens())
    assert task.label_smoothing == 0.0  # the LM takes label smoothing; mixup never applied to it
    with pytest.raises(ConfigError, match="unknown option"):
        build_task(load_config(None, ["data=gcide", "task.options.mixup=0.5"]), Tokens())


@pytest.mark.parametrize("override,pattern", [
    ("optim.mixup=-1", r"task.options.mixup must be >= 0"),
    ("optim.mix_prob=1.5", r"task.options.mix_prob must be in \[0, 1\]"),
    ("optim.tet=yes please", r"task.options.tet must be true or false"),
    ("task.options.tet_lambda=1", r"tet_lambda must be in \[0, 1\)"),
    ("task.options.label_smoothing=1", r"label_smoothing must be in \[0, 1\)"),
])
def test_bad_loss_options_are_one_line_errors(override, pattern):
    from spikeformers.errors import ConfigError

    with pytest.raises(ConfigError, match=pattern):
        classify_loss(load_config(None, [override]))
