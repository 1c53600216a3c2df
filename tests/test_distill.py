"""Distillation from a teacher run (`distill.teacher`): the KL term against references written here, the
teacher's handling (frozen, eval mode, no gradient, not counted by energy or firing rates), its errors, and
tiny end-to-end runs with resume."""
import json
import os
import shutil

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikeformers.errors import ConfigError
from spikeformers.tasks import create_task
from spikeformers.train import Trainer, load_config, train

FAST = ["model.dim=32", "data.batch_size=128", "run.log_every=5", "optim.lr=3e-3", "run.device=cpu"]
TEXT = "a cat sat on a mat. the dog ate the log. " * 60


def _cfg(out, *extra):
    return load_config(None, [f"run.out_dir={out}", *FAST, *extra])


def _metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        recs = [json.loads(line) for line in f]
    drop = {"images_per_s", "epoch_time_s", "elapsed_s"}
    return [{k: v for k, v in r.items() if k not in drop} for r in recs]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A tiny finished ANN-twin run on digits."""
    out = tmp_path_factory.mktemp("teacher")
    return train(_cfg(out, "twin=ann", "epochs=2", "name=teacher"), progress=False)["run_dir"]


def _reference_kl(s, t, tau):  # Hinton et al.: KL(p_t || p_s) at temperature tau, times tau^2, per row
    s, t = s.reshape(-1, s.shape[-1]), t.reshape(-1, t.shape[-1])
    return F.kl_div(F.log_softmax(s / tau, -1), F.softmax(t / tau, -1), reduction="batchmean") * tau ** 2


@pytest.mark.parametrize("task,shape", [("classify", (6, 10)), ("lm", (3, 5, 17))])
def test_kl_term_equals_the_reference(task, shape):
    torch.manual_seed(0)
    t = create_task(task, load_config(None), label_smoothing=0.0)
    base = t.loss(nn.Identity())
    s_logits, t_logits = torch.randn(shape) * 3, torch.randn(shape) * 3
    y = torch.randint(0, shape[-1], shape[:-1])
    for weight, tau in [(1.0, 1.0), (0.5, 2.0), (2.0, 4.0)]:
        loss = t.distill_loss(base, nn.Identity(), nn.Identity(), weight=weight, temperature=tau)
        got = loss(s_logits, y, (t_logits, [])) - base(s_logits, y)
        torch.testing.assert_close(got, weight * _reference_kl(s_logits, t_logits, tau), rtol=1e-5, atol=1e-6)
    same = t.distill_loss(base, nn.Identity(), nn.Identity())(s_logits, y, (s_logits, []))
    torch.testing.assert_close(same, base(s_logits, y))  # a teacher that agrees adds nothing


def test_segment_compares_per_pixel_and_detect_per_class_sigmoids():
    torch.manual_seed(0)
    s, t = torch.randn(2, 4, 3, 5), torch.randn(2, 4, 3, 5)  # [B, classes, H, W]
    seg = create_task("segment", load_config(None))
    kl = seg.distill_loss(lambda o, y: torch.zeros(()), nn.Identity(), nn.Identity(), temperature=2.0)
    torch.testing.assert_close(kl(s, None, (t, [])), _reference_kl(s.permute(0, 2, 3, 1), t.permute(0, 2, 3, 1), 2.0))
    det = create_task("detect", load_config(None))
    out_s, out_t = {"cls": torch.randn(2, 7, 3), "box": None}, {"cls": torch.randn(2, 7, 3), "box": None}
    kl = det.distill_loss(lambda o, y: torch.zeros(()), nn.Identity(), nn.Identity(), temperature=3.0)
    p_t = torch.sigmoid(out_t["cls"] / 3)  # Bernoulli KL = cross-entropy minus the teacher's entropy
    ref = (F.binary_cross_entropy_with_logits(out_s["cls"] / 3, p_t, reduction="none")
           - F.binary_cross_entropy_with_logits(out_t["cls"] / 3, p_t, reduction="none")).sum(-1).mean() * 9
    torch.testing.assert_close(kl(out_s, None, (out_t, [])), ref)


def test_weight_zero_is_exactly_the_plain_loss():
    t = create_task("classify", load_config(None))
    base = t.loss(nn.Identity())
    s, te, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    loss = t.distill_loss(base, nn.Identity(), nn.Identity(), weight=0.0)
    assert torch.equal(loss(s, y, (te, [])), base(s, y))


def test_weight_zero_trains_exactly_like_no_teacher(tmp_path, teacher):
    plain = train(_cfg(tmp_path / "a", "epochs=1", "run.max_steps=4"), progress=False)
    zero = train(_cfg(tmp_path / "b", "epochs=1", "run.max_steps=4", f"distill.teacher={teacher}",
                      "distill.weight=0"), progress=False)
    assert _metrics(zero["run_dir"]) == _metrics(plain["run_dir"])


def test_teacher_is_frozen_in_eval_mode_and_gets_no_gradient(tmp_path, teacher):
    tr = Trainer(_cfg(tmp_path, "epochs=1", "run.max_steps=3", f"distill.teacher={teacher}"), progress=False)
    t = tr.loss_fn.teacher
    before = {k: v.clone() for k, v in t.state_dict().items()}
    tr.loss_fn.train()  # a loss switched to training keeps its teacher in eval mode
    tr.fit()
    assert not t.training and all(not m.training for m in t.modules())
    assert all(p.grad is None and not p.requires_grad for p in t.parameters())
    assert all(torch.equal(before[k], v) for k, v in t.state_dict().items())
    assert all(p.grad is not None for p in tr.params)  # the student did learn from the combined loss
    assert not any(p is q for p in tr.params for q in t.parameters())


def test_energy_and_firing_rates_do_not_see_the_teacher(tmp_path, teacher):
    plain = Trainer(_cfg(tmp_path / "a", "epochs=1"), progress=False)
    taught = Trainer(_cfg(tmp_path / "b", "epochs=1", f"distill.teacher={teacher}", "distill.features=1"),
                     progress=False)
    taught.model.load_state_dict(plain.model.state_dict())
    e_plain, e_taught = plain._energy(plain.model)["energy"], taught._energy(taught.model)["energy"]
    assert e_plain == e_taught
    loader = next(iter(plain.eval_loaders.values()))
    r_plain = plain.task.evaluate(plain.model, loader, None, monitor=True)
    r_taught = taught.task.evaluate(taught.model, loader, None, monitor=True)
    assert r_plain["firing_rates"] == r_taught["firing_rates"] and r_plain["acc"] == r_taught["acc"]


def test_end_to_end_run_records_the_teacher_and_resumes_exactly(tmp_path, teacher, monkeypatch):
    args = ("epochs=2", f"distill.teacher={teacher}", "distill.temperature=3", "distill.features=0.5")
    full = train(_cfg(tmp_path / "full", *args), progress=False)
    saved = load_config(os.path.join(full["run_dir"], "config.yaml"))
    assert (saved.distill.teacher, saved.distill.temperature, saved.distill.features) == (teacher, 3.0, 0.5)
    calls = {"n": 0}
    original = Trainer.train_epoch

    def killed_in_epoch_2(self):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "train_epoch", killed_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(tmp_path / "part", *args), progress=False)
    monkeypatch.setattr(Trainer, "train_epoch", original)
    run = os.path.join(tmp_path / "part", os.listdir(tmp_path / "part")[0])
    resumed = train(None, progress=False, resume=run)
    assert _metrics(resumed["run_dir"]) == _metrics(full["run_dir"])
    assert resumed["test_acc"] == full["test_acc"]
    plain = train(_cfg(tmp_path / "plain", "epochs=2"), progress=False)
    assert _metrics(plain["run_dir"])[0]["train_loss"] != _metrics(full["run_dir"])[0]["train_loss"]


def test_feature_matching_is_the_mse_of_block_outputs_mean_over_time(tmp_path, teacher):
    tr = Trainer(_cfg(tmp_path, "epochs=1", f"distill.teacher={teacher}", "distill.weight=0", "distill.features=2"),
                 progress=False)
    x, y = next(iter(tr.train_loader))
    seen = {}
    hooks = [m.blocks[0].register_forward_hook(lambda mod, i, o, k=k: seen.__setitem__(k, o.mean(0)))
             for k, m in (("s", tr.model), ("t", tr.loss_fn.teacher))]
    tr.model.train()
    out = tr.model(x)
    got = tr.loss_fn(out, y, tr.loss_fn.teach(x))
    for h in hooks:
        h.remove()
    want = tr.loss_fn.base(out, y) + 2 * ((seen["s"] - seen["t"]) ** 2).mean()
    torch.testing.assert_close(got, want)


def _one_line(excinfo, *words):
    msg = str(excinfo.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_teacher_errors_are_one_line(tmp_path, teacher):
    with pytest.raises(ConfigError) as e:
        Trainer(_cfg(tmp_path, f"distill.teacher={tmp_path / 'nowhere'}"), progress=False)
    _one_line(e, "nowhere", "no such folder")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("hello")
    with pytest.raises(ConfigError) as e:
        Trainer(_cfg(tmp_path, f"distill.teacher={foreign}"), progress=False)
    _one_line(e, "not a run directory")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(teacher, unfinished)
    os.remove(unfinished / "summary.json")
    with pytest.raises(ConfigError) as e:
        Trainer(_cfg(tmp_path, f"distill.teacher={unfinished}"), progress=False)
    _one_line(e, "not a finished run")
    wide = train(_cfg(tmp_path / "wide", "twin=ann", "epochs=1", "run.max_steps=1", "model.dim=64"), progress=False)
    with pytest.raises(ConfigError) as e:
        Trainer(_cfg(tmp_path, f"distill.teacher={wide['run_dir']}", "distill.features=1"), progress=False).fit()
    _one_line(e, "block 0", "[128, 16, 32]", "[128, 16, 64]")


def test_teacher_with_other_classes_or_vocabulary_is_refused(tmp_path):
    twelve = train(_cfg(tmp_path / "t12", "twin=ann", "epochs=1", "run.max_steps=1", "model.num_classes=12"),
                   progress=False)
    with pytest.raises(ConfigError) as e:
        Trainer(_cfg(tmp_path / "s", f"distill.teacher={twelve['run_dir']}"), progress=False)
    _one_line(e, "teacher classes 12 vs student 10")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT)
    lm = ["model=spiking_lm_tiny", "data=text", f"data.root={corpus}", "data.options.seq_len=16", "model.block_size=16",
          "batch_size=8", "data.eval_batch_size=16", "epochs=1", "run.max_steps=1", "run.device=cpu"]
    wide = train(load_config(None, [*lm, f"run.out_dir={tmp_path / 'lmt'}", "twin=ann", "model.vocab_size=300"]),
                 progress=False)
    with pytest.raises(ConfigError) as e:
        Trainer(load_config(None, [*lm, f"run.out_dir={tmp_path / 'lms'}", f"distill.teacher={wide['run_dir']}"]),
                progress=False)
    _one_line(e, "teacher vocabulary 300 vs student 256")
    with pytest.raises(ConfigError) as e:  # a language model cannot teach a classifier
        Trainer(_cfg(tmp_path / "s2", f"distill.teacher={wide['run_dir']}"), progress=False)
    _one_line(e, "'lm' run", "'classify'")


def test_config_checks_the_distill_section():
    for bad, words in [("distill.weight=-1", ">= 0"), ("distill.temperature=0", "> 0"), ("distill.features=-0.5", ">= 0"),
                       ("distill.teacher=' '", "a run folder"), ("distill.tau=2", "valid keys of distill")]:
        with pytest.raises(ConfigError, match=words.replace("[", r"\[")):
            load_config(None, [bad])
    d = load_config(None).distill
    assert (d.teacher, d.weight, d.temperature, d.features) == (None, 1.0, 2.0, 0.0)
