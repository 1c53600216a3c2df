"""SpikeGPT (Zhu et al., TMLR 2024): official parameter counts, the forward against a token-by-token reference
written here from the paper's equations, step() == forward, causality, gradients, energy, and a run of the
`lm` task with generation through step()."""
import math

import pytest
import torch
import torch.nn.functional as F

from spikeformers import count_parameters, create_model
from spikeformers.energy import energy_report
from spikeformers.models.spikegpt import SpikeGPT, wkv, wkv_step
from spikeformers.train import load_config, load_trained_model, train
from spikeformers.train.generate import generate_from_run
from stepping import logits_by_step

VOCAB, N = 16, 11
TINY = dict(vocab_size=VOCAB, dim=8, depth=2, block_size=16, wkv_chunk=4)  # N = 11: 3 chunks, the last padded


def official_count(vocab, dim, depth, hidden_ratio=4):
    """Parameters of the official `GPT` (ridgerchu/SpikeGPT src/model.py, model_type "RWKV"), shape by shape:
    per block ln1, ln2 (2 x 2D); TimeMix time_decay, time_first, time_mix_k/v/r (5D) and key, value,
    receptance, output (4 D^2); ChannelMix time_mix_k/r (2D), key D x 4D, receptance D x D, value 4D x D (9 D^2);
    block 0 adds ln0 (2D); emb and head (2 vocab D); ln_out (2D). LIF neurons have no parameters."""
    h = hidden_ratio * dim
    block = 4 * dim + 5 * dim + 4 * dim * dim + 2 * dim + dim * h + dim * dim + h * dim
    return depth * block + 2 * dim + 2 * vocab * dim + 2 * dim


def test_parameter_counts_equal_the_official_model_exactly():
    """46M: 12 x 512 with enwik8's 5458 characters: 12 (13 D^2 + 11 D) + 2 x 5458 x 512 + 4 x 512 = 46,553,088.
    216M: 18 x 768 with the GPT-NeoX tokenizer's 50,277 tokens: 215,399,424 (the paper's 216M; its
    model card's 215.4M)."""
    assert official_count(5458, 512, 12) == 46_553_088
    assert official_count(50277, 768, 18) == 215_399_424
    assert count_parameters("spikegpt_46m") == 46_553_088
    assert count_parameters("spikegpt_216m") == 215_399_424
    assert count_parameters("spikegpt_tiny", **TINY) == official_count(VOCAB, 8, 2)
    assert count_parameters("spikegpt_tiny", twin="ann") == count_parameters("spikegpt_tiny")


def tiny(**kw):
    torch.manual_seed(0)
    model = create_model("spikegpt_tiny", **{**TINY, **kw}).double().eval()
    with torch.no_grad():  # larger weights than PyTorch's defaults, so that every LIF fires now and then
        for name, p in model.named_parameters():
            if name.endswith(("key.weight", "value.weight", "receptance.weight", "output.weight")):
                p.normal_(0, 1.2 / math.sqrt(p.shape[1]))
            elif "ln" in name:
                p.add_(0.1 * torch.randn_like(p))
        for blk in model.blocks:
            blk.att.output.weight.mul_(4.0)
            blk.ffn.value.weight.mul_(2.0)
    return model


def ids(seed=1, n=N):
    return torch.randint(0, VOCAB, (2, n), generator=torch.Generator().manual_seed(seed))


# --- a reference written from the paper's equations, one token at a time, float64 ----------------------
def ln(x, m):
    mu, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    return (x - mu) / torch.sqrt(var + m.eps) * m.weight + m.bias


def lif(xs):
    """tau 2, V_th 1, hard reset to 0: H = V + (X - V) / 2, S = [H >= 1], V = H (1 - S)."""
    v, out = torch.zeros_like(xs[0]), []
    for x in xs:
        h = v + (x - v) / 2
        s = (h >= 1).double()
        v = h * (1 - s)
        out.append(s)
    return out


def reference_logits(model, tokens):
    """SpikeGPT's forward for one sequence (1-D ids), written out per token from Zhu et al. Eq. (RWKV-4 WKV)."""
    P = {k: v.detach() for k, v in model.named_parameters()}
    xs = [(P["emb.weight"][t] >= 0).double() for t in tokens.tolist()]  # binary embedding spikes
    for b, blk in enumerate(model.blocks):
        pre = f"blocks.{b}."
        if b == 0:
            xs = [ln(x, blk.ln0) for x in xs]
        # TimeMix
        h = [ln(x, blk.ln1) for x in xs]
        w, u = -torch.exp(P[pre + "att.time_decay"]), P[pre + "att.time_first"]
        ks, vs, ys = [], [], []
        for t, x in enumerate(h):
            prev = h[t - 1] if t else torch.zeros_like(x)
            mix = lambda mu: x * P[pre + "att." + mu] + prev * (1 - P[pre + "att." + mu])  # noqa: E731
            k, v = P[pre + "att.key.weight"] @ mix("time_mix_k"), P[pre + "att.value.weight"] @ mix("time_mix_v")
            r = P[pre + "att.receptance.weight"] @ mix("time_mix_r")
            ks.append(k), vs.append(v)
            num = sum(torch.exp((t - 1 - i) * w + ks[i]) * vs[i] for i in range(t)) + torch.exp(u + k) * v
            den = sum(torch.exp((t - 1 - i) * w + ks[i]) for i in range(t)) + torch.exp(u + k)
            ys.append(P[pre + "att.output.weight"] @ (torch.sigmoid(r) * num / den))
        xs = [x + s for x, s in zip(xs, lif(ys))]
        # ChannelMix
        h = [ln(x, blk.ln2) for x in xs]
        ys = []
        for t, x in enumerate(h):
            prev = h[t - 1] if t else torch.zeros_like(x)
            xk = x * P[pre + "ffn.time_mix_k"] + prev * (1 - P[pre + "ffn.time_mix_k"])
            xr = x * P[pre + "ffn.time_mix_r"] + prev * (1 - P[pre + "ffn.time_mix_r"])
            kv = P[pre + "ffn.value.weight"] @ torch.relu(P[pre + "ffn.key.weight"] @ xk) ** 2
            ys.append(torch.sigmoid(P[pre + "ffn.receptance.weight"] @ xr) * kv)
        xs = [x + s for x, s in zip(xs, lif(ys))]
    return torch.stack([P["head.weight"] @ ln(x, model.ln_out) for x in xs])


def test_forward_equals_the_token_by_token_reference_of_the_papers_equations():
    model, x = tiny(), ids()
    out = model(x)
    for b in range(2):
        torch.testing.assert_close(out[b], reference_logits(model, x[b]), rtol=1e-9, atol=1e-9)
    # the LIFs fire sometimes, not always: the comparison exercises the neurons
    rates = []
    hooks = [m.register_forward_hook(lambda mod, i, o: rates.append(o.mean().item()))
             for n, m in model.named_modules() if n.endswith(("lif1", "lif2"))]
    model(x)
    for hk in hooks:
        hk.remove()
    assert all(0 < r < 1 for r in rates), rates


def test_wkv_parallel_and_recurrent_forms_equal_the_definition():
    g = torch.Generator().manual_seed(0)
    B, n, C = 2, 13, 5
    k, v = torch.randn(B, n, C, generator=g, dtype=torch.double) * 3, torch.randn(B, n, C, generator=g, dtype=torch.double)
    w, u = -torch.exp(torch.randn(C, generator=g, dtype=torch.double)), torch.randn(C, generator=g, dtype=torch.double)
    ref = torch.stack([
        (sum(torch.exp((t - 1 - i) * w + k[:, i]) * v[:, i] for i in range(t)) + torch.exp(u + k[:, t]) * v[:, t])
        / (sum(torch.exp((t - 1 - i) * w + k[:, i]) for i in range(t)) + torch.exp(u + k[:, t])) for t in range(n)], 1)
    for chunk in (1, 4, 5, 13, 64):
        torch.testing.assert_close(wkv(w, u, k, v, chunk), ref, rtol=1e-10, atol=1e-12)
    state, ys = None, []
    for t in range(n):
        y, state = wkv_step(w, u, k[:, t], v[:, t], state)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys, 1), ref, rtol=1e-10, atol=1e-12)


def test_step_by_step_logits_equal_forward():
    for twin in (None, "ann"):
        model, x = tiny(twin=twin), ids()
        ref = model(x)
        steps, state = logits_by_step(model, x)
        assert state.pos == N
        torch.testing.assert_close(steps, ref, rtol=1e-9, atol=1e-9)


def test_future_tokens_never_change_past_logits():
    model, x = tiny(), ids()
    ref = model(x)
    for n in (0, 3, 5, N - 2):  # inside a chunk, at its end, across chunks
        y = x.clone()
        y[:, n + 1:] = (y[:, n + 1:] + 7) % VOCAB
        out = model(y)
        assert torch.equal(out[:, : n + 1], ref[:, : n + 1])
        assert not torch.equal(out[:, n + 1:], ref[:, n + 1:])


def test_forward_backward_every_parameter_gets_a_finite_gradient():
    model = create_model("spikegpt_tiny", **TINY).train()
    x = ids()
    loss = F.cross_entropy(model(x).flatten(0, 1), torch.roll(x, -1, 1).flatten())
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name  # the surrogates pass gradient to every parameter


def test_energy_report_is_finite_with_the_lif_firing_rates():
    model = tiny().float()
    rep = energy_report(model, ids())
    h = rep.headline()
    assert math.isfinite(h["snn_uJ"]) and h["snn_uJ"] > 0 and math.isfinite(h["ann_twin_uJ"])
    neurons = rep.counts.neurons
    assert len(neurons) == 4  # lif1, lif2 per block
    assert all(0 < l.output.rate < 1 for l in neurons)


def test_generation_restarts_past_block_size_and_greedy_matches_argmax():
    model = tiny()
    out = model.generate(ids(n=3), 20, temperature=0)  # 23 > block_size 16: restarts from the last half
    assert out.shape == (2, 23)
    torch.testing.assert_close(model(out[:, :10])[:, -1].argmax(-1), out[:, 10])


def test_bad_options_are_one_line_errors():
    for kw, match in [(dict(wkv_chunk=0), "wkv_chunk"), (dict(twin="qann"), "twin"), (dict(depth=0), "depth")]:
        with pytest.raises(ValueError, match=match) as e:
            create_model("spikegpt_tiny", **kw)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="block_size"):
        create_model("spikegpt_tiny")(torch.zeros(1, 40, dtype=torch.long))


def test_trains_through_the_lm_task_and_generates_through_step(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a cat sat on a mat. the dog ate the log. " * 60)
    cfg = load_config(None, ["model=spikegpt_tiny", "data=text", f"data.root={corpus}", "data.options.seq_len=16",
                             "model.block_size=16", "batch_size=8", "data.eval_batch_size=16", "run.max_steps=2",
                             "task.options.label_smoothing=0", f"run.out_dir={tmp_path}", "run.device=cpu", "name=sg"])
    s = train(cfg, progress=False)
    assert s["finished"] and s["steps"] == 2 and math.isfinite(s["test_bpc"]) and "snn_nJ_per_token" in s["energy"]
    model, _, _ = load_trained_model(s["run_dir"], device="cpu")
    assert isinstance(model, SpikeGPT) and model.cfg.vocab_size == 256
    calls = []
    real_step = SpikeGPT.step
    monkeypatch.setattr(SpikeGPT, "step", lambda self, i, st=None: calls.append(1) or real_step(self, i, st))
    r = generate_from_run(s["run_dir"], "the ", 6, temperature=0.7, top_k=5, seed=3, device="cpu")
    assert r["tokens"] == 6 and len(calls) == 4 + 5  # prompt prefill, then one step per new token but the last
