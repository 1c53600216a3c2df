"""Spiking causal LM: causality, step-by-step decoding == forward, generation, twin, input errors."""
import pytest
import torch

from spikeformers import count_parameters, create_model, list_attentions
from spikeformers.attention import ATTENTIONS, unused_parameter_names
from stepping import logits_by_step

CAUSAL = [n for n in list_attentions() if getattr(ATTENTIONS.get(n), "supports_causal", False)]
VOCAB, N = 64, 12


def tiny(attention="ssa", **kw):
    torch.manual_seed(0)
    model = create_model("spiking_lm_tiny", attention=attention, **kw).double().eval()
    # scale the token embeddings up so the first neurons fire and every layer mixes tokens
    with torch.no_grad():
        model.tok_emb.weight.mul_(3)
    return model


def ids(seed=1, n=N):
    return torch.randint(0, VOCAB, (2, n), generator=torch.Generator().manual_seed(seed))


def test_causal_attentions_include_the_documented_ones():
    assert {"ssa", "a2os2a", "softmax", "sdsa"} <= set(CAUSAL)


@pytest.mark.parametrize("attention", CAUSAL)
def test_future_tokens_never_change_past_logits(attention):
    model, x = tiny(attention), ids()
    ref = model(x)
    assert ref.shape == (2, N, VOCAB)
    for n in (0, 5, N - 2):
        y = x.clone()
        y[:, n + 1:] = (y[:, n + 1:] + 7) % VOCAB
        out = model(y)
        assert torch.equal(out[:, : n + 1], ref[:, : n + 1])
        assert not torch.equal(out[:, n + 1:], ref[:, n + 1:])  # the change is seen from n + 1 on


@pytest.mark.parametrize("attention", CAUSAL)
@pytest.mark.parametrize("twin", [None, "ann"])
def test_step_by_step_logits_equal_forward(attention, twin):
    if twin and attention != CAUSAL[0]:
        pytest.skip("the twin always uses softmax attention: one case is enough")
    model, x = tiny(attention, twin=twin), ids()
    ref = model(x)
    steps, state = logits_by_step(model, x)
    assert state.pos == N
    torch.testing.assert_close(steps, ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("attention, twin, shape", [
    ("ssa", None, (2, 2, 2, 16, 16)),      # running sum of k^T v [T, B, H, d, d]: size independent of n
    ("a2os2a", None, (2, 2, 2, 16, 16)),
    ("sdsa", None, (2, 2, 2, 1, 16)),      # running column sum of k * v [T, B, H, 1, d]
    ("qk_channel", None, (2, 2, 2, 1, 16)),  # running column sum of q
    ("qk_token", None, None),              # per-token masks: no state
    ("ssa", "ann", (1, 2, 2, 3, 16)),      # softmax: KV cache [T=1, B, H, n, d], grows with n
])
def test_decoding_state_per_attention(attention, twin, shape):
    model, x, state = tiny(attention, twin=twin), ids(), None
    for n in range(3):
        _, state = model.step(x[:, n], state)
    s = state.layers[0][0]  # the attention's state (then the token shifts' last inputs)
    if twin:
        assert s[0].shape == s[1].shape == shape
    else:
        assert (s is None) if shape is None else (s.shape == shape)


def test_replay_fallback_decodes_any_causal_attention(monkeypatch):
    """Attentions with neither a `step` method nor a registered stepper replay their cached inputs."""
    from spikeformers.models import lm

    monkeypatch.setattr(lm, "_STEPPERS", {})
    model, x = tiny("sdsa"), ids(n=6)
    state, steps = None, []
    for n in range(6):
        logits, state = model.step(x[:, n], state)
        steps.append(logits)
    assert state.layers[0][0].shape == (2, 2, 6, 32)  # the layer's inputs [T, B, n, D]
    torch.testing.assert_close(torch.stack(steps, 1), model(x), rtol=1e-9, atol=1e-9)


def test_generate_is_reproducible_and_greedy_matches_argmax():
    model, prompt = tiny(), ids(n=4)
    a = model.generate(prompt, 6, temperature=0.8, top_k=5, generator=torch.Generator().manual_seed(0))
    b = model.generate(prompt, 6, temperature=0.8, top_k=5, generator=torch.Generator().manual_seed(0))
    assert a.shape == (2, 10) and torch.equal(a, b) and torch.equal(a[:, :4], prompt)
    g = model.generate(prompt, 3, temperature=0)
    for n in range(4, 7):
        assert torch.equal(g[:, n], model(g[:, :n])[:, -1].argmax(-1))


def test_generation_runs_past_block_size_by_restarting_from_the_last_half():
    model, prompt = tiny(), ids(n=30)  # block_size 32
    out = model.generate(prompt, 20, temperature=0)
    assert out.shape == (2, 50) and torch.equal(out[:, :30], prompt)
    # out[:, 32] still sees the full window of 32; the next token is predicted from the last 16 alone
    assert torch.equal(out[:, 32], model(out[:, :32])[:, -1].argmax(-1))
    assert torch.equal(out[:, 33], model(out[:, 17:33])[:, -1].argmax(-1))


@pytest.mark.parametrize("attention", CAUSAL)
def test_training_mode_is_causal_in_outputs_and_gradients(attention):
    """No normalisation across tokens: in train mode too, position n neither sees nor sends gradient
    to positions after n."""
    model, x = tiny(attention), ids()
    model.train()
    ref = model(x)
    y = x.clone()
    y[:, 7:] = (y[:, 7:] + 5) % VOCAB
    assert torch.equal(model(y)[:, :7], ref[:, :7])
    seen = {}
    handle = model.tok_emb.register_forward_hook(lambda m, i, out: seen.setdefault("e", out.retain_grad() or out))
    model(x)[:, 6].sum().backward()
    handle.remove()
    g = seen["e"].grad  # [B, N, D]
    assert g[:, 7:].abs().max() == 0 and g[:, :7].abs().sum() > 0


def test_create_model_with_vocab_and_block_size_and_twin_layout():
    m = create_model("spiking_lm", vocab_size=1000, block_size=128, depth=1, dim=64, num_heads=4)
    assert m.cfg.vocab_size == 1000 and m.head.out_features == 1000 and m.pos_emb.num_embeddings == 128
    assert count_parameters("spiking_lm", vocab_size=1000) > 30e6  # 12 x 512
    twin = create_model("spiking_lm_tiny", twin="ann")
    assert twin.cfg.T == 1 and twin.cfg.attention == "softmax" and twin.blocks[0].attn.causal
    spiking = dict(create_model("spiking_lm_tiny").named_parameters())
    own = {n for n in spiking if ".attn.product." in n}  # the causal product's decay and head norm
    assert {n.split(".")[-1] for n in own} == {"decay_logit", "norm_weight", "norm_bias"}
    assert {n: p.shape for n, p in twin.named_parameters()} == {n: p.shape for n, p in spiking.items() if n not in own}


@pytest.mark.parametrize("attention", CAUSAL)
def test_lm_forward_backward_every_parameter_gets_a_finite_gradient(attention):
    torch.manual_seed(0)
    model = create_model("spiking_lm_tiny", attention=attention).train()
    with torch.no_grad():
        model.tok_emb.weight.mul_(3)
    x = ids()
    loss = torch.nn.functional.cross_entropy(model(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten())
    loss.backward()
    unused = unused_parameter_names(model)
    for name, p in model.named_parameters():
        assert name in unused or (p.grad is not None and torch.isfinite(p.grad).all()), name


def test_input_errors_are_one_line_value_errors():
    model = create_model("spiking_lm_tiny")
    for bad, match in [(torch.rand(2, 5), "integer token ids"), (torch.zeros(2, 3, 4, dtype=torch.long), "integer token ids"),
                       (torch.zeros(2, 5, dtype=torch.bool), "integer token ids"),
                       (torch.zeros(1, 33, dtype=torch.long), "outside 1..block_size 32")]:
        with pytest.raises(ValueError, match=match) as e:
            model(bad)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="expects integer token ids \\[B\\]"):
        model.step(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1"):
        model.generate(torch.zeros(1, 3, dtype=torch.long), 0)
    for name in sorted(set(list_attentions()) - set(CAUSAL)):
        with pytest.raises(ValueError, match=f"{name!r} has no causal form"):
            create_model("spiking_lm_tiny", attention=name)
    with pytest.raises(ValueError, match="encoder must be 'direct'"):
        create_model("spiking_lm_tiny", encoder="rate")
