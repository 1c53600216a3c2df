"""ANN-to-SNN conversion: every part of the converted network, summed over its time steps, gives the QANN's
value (against few-line references written here), the whole network's logits converge to the QANN's and
then equal them, and a converted run folder is an ordinary run (to-snn, then eval, energy, predict)."""
import copy
import json
import math

import numpy as np
import pytest
import yaml
import torch
import torch.nn.functional as F

from spikeformers import convert_to_snn, create_model
from spikeformers.cli import main
from spikeformers.models.conversion import (AccumulatedHadamard, AccumulatedMaxPool, AccumulatedProduct, STBIFNode, StepConv,
                                     StepLinear, convert_model, fold_batchnorm)
from spikeformers.energy import count_ops
from spikeformers.layers.time import ConvBN, LinearBN
from spikeformers.models import model_info
from spikeformers.neurons.quant import QuantNode
from spikeformers.train import load_config, train
from spikeformers.train.evaluate import evaluate_run

F64 = torch.float64


def _randomize(model, g):
    """Eval-mode statistics and steps that make every layer multi-level (fresh models are nearly silent)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2, generator=g), m.running_var.uniform_(0.5, 2.0, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g), m.bias.data.uniform_(-0.1, 0.3, generator=g)
        if isinstance(m, QuantNode):
            m.step_size.data.uniform_(0.08, 0.2, generator=g)
    return model.eval()


def _split_over_steps(total, steps, g):
    """Increments [steps, ...] that sum to `total`, with signed detours (a partial sum overshoots)."""
    parts = torch.randn((steps, *total.shape), dtype=total.dtype, generator=g)
    return parts - parts.mean(0) + total / steps


# --- the neuron ------------------------------------------------------------------------------------
def test_st_bif_spikes_sum_to_the_quantized_input_once_settled():
    g = torch.Generator().manual_seed(0)
    theta, L, K = 0.25, 7, 5
    X = torch.rand(4000, dtype=F64, generator=g) * 3 - 1  # below 0, inside, and above L theta = 1.75
    x = torch.cat([_split_over_steps(X, K, g), torch.zeros((2 * L, *X.shape), dtype=F64)])
    n = STBIFNode(threshold=torch.tensor(theta, dtype=F64), levels=L)
    out = n(x)
    assert set(torch.unique(out).tolist()) <= {-theta, 0.0, theta}
    want = theta * torch.clamp(torch.floor(X / theta + 0.5), 0, L)  # the quantizer, as QCFS writes it
    torch.testing.assert_close(out.sum(0), want, rtol=0, atol=1e-12)
    q = QuantNode(bits=3)
    q.step_size.data = torch.tensor(theta - 1e-8, dtype=F64)  # the quantizer adds 1e-8 to its step
    torch.testing.assert_close(out.sum(0), q(X[None])[0], rtol=0, atol=1e-9)
    # one spike per step at most: before K + L steps the sum may still miss
    assert (out[: K + L].sum(0) != want).sum() == 0 and (out[:3].sum(0) != want).sum() > 100


def test_signed_spikes_take_back_what_unsigned_qcfs_cannot():
    x = torch.tensor([3.0, 0, 0, 0, -3.0, 0, 0, 0])[:, None]  # +3 theta, then -3 theta: the value is 0
    signed = STBIFNode(threshold=1.0, levels=7)(x)[:, 0].tolist()
    unsigned = STBIFNode(threshold=1.0, levels=7, signed=False)(x)[:, 0].tolist()
    assert signed == [1, 1, 1, 0, -1, -1, -1, 0]
    assert unsigned == [1, 1, 1, 0, 0, 0, 0, 0]


# --- linear layers ---------------------------------------------------------------------------------
def test_linear_with_folded_batchnorm_and_bias_at_step_zero():
    g = torch.Generator().manual_seed(1)
    layer = _randomize(LinearBN(6, 5).double(), g)
    x = _split_over_steps(torch.randn(3, 4, 6, dtype=F64, generator=g), 5, g)
    x[2] = 0  # a silent step: not computed, and no bias there
    step = StepLinear(*fold_batchnorm(layer.linear.weight, layer.linear.bias, layer.bn))
    y = step(x)
    lin, bn = layer.linear, layer.bn
    want = ((x.sum(0) @ lin.weight.T + lin.bias - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)
            * bn.weight + bn.bias)
    torch.testing.assert_close(y.sum(0), want, rtol=0, atol=1e-12)
    assert torch.equal(y[2], torch.zeros_like(y[2]))
    torch.testing.assert_close(step(x[:1]), layer(x[:1]), rtol=0, atol=1e-12)  # folding = BN in eval mode


def test_conv_with_folded_batchnorm_and_bias_at_step_zero():
    g = torch.Generator().manual_seed(2)
    layer = _randomize(ConvBN(3, 4).double(), g)
    x = _split_over_steps(torch.randn(2, 3, 5, 5, dtype=F64, generator=g), 4, g)
    step = StepConv(layer.conv, *fold_batchnorm(layer.conv.weight, layer.conv.bias, layer.bn))
    bn = layer.bn
    c = F.conv2d(x.sum(0), layer.conv.weight, padding=1)
    want = (c - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var + bn.eps)[:, None, None] \
        * bn.weight[:, None, None] + bn.bias[:, None, None]
    torch.testing.assert_close(step(x).sum(0), want, rtol=0, atol=1e-12)
    torch.testing.assert_close(step(x[:1]), layer(x[:1]), rtol=0, atol=1e-12)


# --- accumulate-and-correct ------------------------------------------------------------------------
def _spikes(shape, g, p=0.3):
    """Ternary spike increments of amplitude 0.5."""
    u = torch.rand(shape, generator=g, dtype=F64)
    return 0.5 * ((u < p / 2).to(F64) - (u > 1 - p / 2).to(F64))


@pytest.mark.parametrize("order", ["q_kv", "qk_v"])
def test_attention_product_is_exact_at_every_step(order):
    g = torch.Generator().manual_seed(3)
    q, k, v = (_spikes((6, 2, 3, 5, 4), g) for _ in range(3))
    y = AccumulatedProduct(0.125, order)(q, k, v)
    Q, K, V = q.cumsum(0), k.cumsum(0), v.cumsum(0)
    want = 0.125 * torch.einsum("tbhnd,tbhmd,tbhme->tbhne", Q, K, V)  # summed-to-t inputs, product
    torch.testing.assert_close(y.cumsum(0), want, rtol=0, atol=1e-12)


def test_hadamard_is_exact_at_every_step_with_broadcasting():
    g = torch.Generator().manual_seed(4)
    a, b = _spikes((5, 2, 3, 4, 1), g), _spikes((5, 2, 3, 4, 6), g)
    y = AccumulatedHadamard()(a, b)
    torch.testing.assert_close(y.cumsum(0), a.cumsum(0) * b.cumsum(0), rtol=0, atol=1e-12)


def test_max_pool_is_exact_at_every_step_and_keeps_spikes_spikes():
    g = torch.Generator().manual_seed(5)
    T, B = 6, 2
    x = _spikes((T, B, 3, 7, 7), g, p=0.5).float()
    y = AccumulatedMaxPool(3, 2, 1, T)(x.flatten(0, 1)).unflatten(0, (T, B))
    acc = torch.nn.functional.pad(x.double().cumsum(0), (1, 1, 1, 1), value=-math.inf)
    want = acc.unfold(3, 3, 2).unfold(4, 3, 2).amax((-1, -2))  # 3x3 windows, stride 2, padding 1
    torch.testing.assert_close(y.double().cumsum(0), want, rtol=0, atol=1e-6)
    assert set(torch.unique(y).tolist()) <= {-0.5, 0.0, 0.5}  # exactly the spike amplitude, no rounding


# --- whole models ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["spikformer_tiny", "qkformer_tiny", "sdt_tiny"])
def test_logits_converge_to_the_qann_and_then_equal_it(name):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    qann = _randomize(create_model(name, twin="qann_sa", T=4).double(), g)  # 3 bits, L = 7
    x = torch.rand(8, 1, 8, 8, dtype=F64, generator=g)
    with torch.no_grad():
        ref = qann(x)
        snn = convert_model(copy.deepcopy(qann), 64, family=model_info(name)["family"])
        partial = snn(x, per_step=True).cumsum(0) / 64  # the logits summed to step t
        errs = [(partial[t - 1] - ref).abs().max().item() for t in (1, 2, 4, 8, 16, 32, 64)]
        assert errs[0] > 0.1 * ref.abs().max()  # far at first
        assert all(b <= a + 1e-12 for a, b in zip(errs, errs[1:]))  # never further as T grows
        assert errs[-1] < 1e-12  # then equal
        torch.testing.assert_close(snn(x), ref, rtol=0, atol=1e-12)
        short = convert_model(copy.deepcopy(qann), 8, family=model_info(name)["family"])
        torch.testing.assert_close(short(x), partial[7], rtol=0, atol=1e-12)  # causal: T = 8 is the first 8 steps


def test_convert_to_snn_is_an_ordinary_model_rebuilt_from_its_arguments():
    qann = _randomize(create_model("spikformer_tiny", twin="qann_sa", T=2), torch.Generator().manual_seed(1))
    before = {k: v.clone() for k, v in qann.state_dict().items()}
    snn = convert_to_snn(qann, T=12)
    assert all(torch.equal(before[k], v) for k, v in qann.state_dict().items())  # the QANN is left alone
    assert snn.model_args == {"twin": "qann_sa", "T": 2, "conversion": {"T": 12, "signed": True}}
    again = create_model(snn.model_name, **snn.model_args)
    again.load_state_dict(snn.state_dict())
    x = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(again(x), snn(x), rtol=0, atol=0)
    assert isinstance(again.blocks[0].attn.q_neuron, STBIFNode) and again.cfg.T == 12


@pytest.mark.parametrize("kw, message", [
    ({"twin": "qann"}, "softmax attention has no exact spiking form"),
    ({"twin": "qann_sa", "attention": "a2os2a"}, "A2OS2A has no exact spiking form"),
    ({"twin": None}, "twin='qann_sa'"),
])
def test_what_does_not_convert_is_refused_by_name(kw, message):
    with pytest.raises(ValueError, match=message):
        create_model("spikformer_tiny", conversion={"T": 8}, **kw)


def test_bad_conversion_options():
    with pytest.raises(ValueError, match="unknown conversion option"):
        create_model("spikformer_tiny", twin="qann_sa", conversion={"T": 8, "steps": 3})
    with pytest.raises(ValueError, match="positive integer"):
        create_model("spikformer_tiny", twin="qann_sa", conversion={"T": 0})
    with pytest.raises(ValueError, match="conversion covers the model families"):
        create_model("spikformer_seq_tiny", twin="qann_sa", conversion={"T": 8})
    with pytest.raises(ValueError, match="features_only"):
        create_model("spikformer_tiny", twin="qann_sa", conversion={"T": 8}, features_only=True)


def test_energy_counts_events_where_spikes_drive_and_the_image_once():
    g = torch.Generator().manual_seed(2)
    snn = convert_to_snn(_randomize(create_model("spikformer_tiny", twin="qann_sa", T=4), g), T=16)
    c = count_ops(snn, torch.rand(8, 1, 8, 8, generator=g))
    first = c.layer("patch_embed.stages.0.conv")
    assert first.analog_first and first.steps == 1 and first.mac == first.ops  # the pulse: one step ran
    neurons = c.neurons
    assert neurons and all(not n.geometry["leaky"] for n in neurons)  # IF: no leak multiply
    assert c.layer("blocks.0.mlp.fc2.linear").event == "x"  # reads one neuron's spikes: events
    terms = [l for l in c.layers if l.name.startswith("blocks.0.attn.product.")]
    assert len(terms) == 4 and sum(l.event is None for l in terms) == 1  # only the running-sum x running-sum term is dense
    spiking = [l for l in terms if l.event is not None]
    for l in spiking:  # each event touches ops / numel outputs: AC = ops x rate of the spike operand
        assert l.ac == pytest.approx(l.ops * l.operands[l.event].rate)


# --- run folders -----------------------------------------------------------------------------------
def test_to_snn_writes_runs_that_eval_energy_and_predict_read(tmp_path, capsys):
    cfg = load_config(None, ["model.twin=qann_sa", "epochs=1", "run.max_steps=4", f"run.out_dir={tmp_path}",
                             "name=q", "run.device=cpu"])
    train(cfg, progress=False)
    assert main(["to-snn", str(tmp_path / "q"), "--T", "16", "4", "-q"]) == 0
    rec = json.load(open(tmp_path / "q_snn.json"))
    assert [r["T"] for r in rec["snn"]] == [4, 16] and (tmp_path / "q_snn.png").stat().st_size > 0
    for T in (4, 16):  # each T evaluates at T x batch = the QANN training's 4 x batch
        saved = yaml.safe_load(open(tmp_path / f"q_snn-T{T}" / "config.yaml"))
        assert saved["data"]["eval_batch_size"] == cfg.data.eval_batch_size * 4 // T
    run = tmp_path / "q_snn-T16"
    s = json.load(open(run / "summary.json"))
    assert s["finished"] and s["conversion"]["T"] == 16 and s["conversion"]["source_run"] == str(tmp_path / "q")
    assert s["model_args"]["conversion"] == {"T": 16, "signed": True} and s["energy"]["T"] == 16
    assert json.load(open(run / "provenance.json"))["converted_from"] == str(tmp_path / "q")
    assert s["test_acc"] == pytest.approx(rec["qann"]["test_acc"], abs=0.02)  # T = 16 >= levels: the QANN's
    res = evaluate_run(str(run), device="cpu", progress=False)
    assert res["test_acc"] == s["test_acc"] and res["mean_firing_rate"] == pytest.approx(s["mean_firing_rate"])
    assert main(["energy", str(run), "--batch", "8"]) == 0
    np.save(tmp_path / "img.npy", np.random.default_rng(0).random((1, 8, 8)).astype(np.float32))
    assert main(["predict", str(run), str(tmp_path / "img.npy"), "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["to-snn", str(tmp_path / "q"), "--T", "4"]) == 0  # finished: kept
    assert "is finished; kept" in capsys.readouterr().out


def test_to_snn_refuses_a_run_that_is_not_a_qann_sa_and_a_foreign_folder(tmp_path, capsys):
    cfg = load_config(None, ["model.twin=qann", "epochs=1", "run.max_steps=2", f"run.out_dir={tmp_path}", "name=q",
                             "run.device=cpu"])
    train(cfg, progress=False)
    assert main(["to-snn", str(tmp_path / "q"), "--T", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert "model.twin=qann_sa" in err and len(err.splitlines()) == 1
    cfg = load_config(None, ["model.twin=qann_sa", "epochs=1", "run.max_steps=2", f"run.out_dir={tmp_path}", "name=s",
                             "run.device=cpu"])
    train(cfg, progress=False)
    (tmp_path / "s_snn-T8").mkdir()
    (tmp_path / "s_snn-T8" / "mine.txt").write_text("keep")
    assert main(["to-snn", str(tmp_path / "s"), "--T", "8"]) == 2
    assert "is not a conversion of" in capsys.readouterr().err
    assert (tmp_path / "s_snn-T8" / "mine.txt").read_text() == "keep"
