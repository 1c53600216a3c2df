"""Decoding through `step()` (`models/decode.py`): the streamed tokens equal greedy decoding by the full forward,
across a window restart; on a GPU, the CUDA-graph replay gives the eager step's logits token for token."""
import pytest
import torch

from spikeformers import create_model
from spikeformers.models.decode import DecodeGraph, stream_tokens

SIZES = dict(dim=32, depth=2, num_heads=2, block_size=12, vocab_size=256)


def greedy_by_forward(model, ids, n):
    """A few-line reference: append the argmax of the full forward's last logits, n times, restarting the
    context from its last block_size // 2 tokens when it is full (as `stream` does)."""
    out, ctx = [], ids
    for _ in range(n):
        with torch.no_grad():
            nxt = model(ctx)[:, -1].argmax(-1)
        out.append(nxt)
        ctx = torch.cat([ctx, nxt[:, None]], 1)
        if ctx.shape[1] > model.cfg.block_size:
            ctx = ctx[:, -(model.cfg.block_size // 2):]
    return torch.stack(out, 1)


@pytest.mark.parametrize("opts", [dict(neuron="ilif", T=1), dict(T=2), dict(twin="ann")])
def test_stream_equals_greedy_full_forward_across_a_window_restart(opts):
    torch.manual_seed(0)
    model = create_model("spiking_lm_tiny", **SIZES, **opts).eval()
    ids = torch.randint(0, 256, (2, 5))
    got = torch.stack(list(stream_tokens(model, ids, 20, temperature=0)), 1)  # 5 + 20 > 12: two restarts
    assert torch.equal(got, greedy_by_forward(model, ids, 20))


def test_bad_arguments_are_errors():
    model = create_model("spiking_lm_tiny", **SIZES)
    for kw in (dict(max_new_tokens=0), dict(max_new_tokens=3, temperature=-1.0), dict(max_new_tokens=3, top_k=0)):
        with pytest.raises(ValueError):
            next(stream_tokens(model, torch.zeros(1, 2, dtype=torch.long), **kw))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("opts", [dict(neuron="ilif", T=1), dict(T=4), dict(T=4, neuron="lif")])
def test_graph_replay_equals_the_eager_step(opts):
    torch.manual_seed(0)
    model = create_model("spiking_lm_tiny", **{**SIZES, "block_size": 40}, **opts).cuda().eval()
    ids = torch.randint(0, 256, (2, 6), device="cuda")
    with torch.no_grad():
        eager = torch.stack(list(stream_tokens(model, ids, 60, temperature=0, graph=False)), 1)
        graphed = torch.stack(list(stream_tokens(model, ids, 60, temperature=0, graph=True)), 1)
        assert torch.equal(eager, graphed)  # 6 + 60 > 40: a restart reloads the graph's state
        state = None
        for n in range(ids.shape[1]):
            logits, state = model.step(ids[:, n], state)
        g = DecodeGraph(model, ids[:, -1], state)
        tok = ids[:, -1]
        for _ in range(5):
            ref, state = model.step(tok, state)
            torch.testing.assert_close(g(tok), ref, rtol=1e-5, atol=1e-5)
            tok = ref.argmax(-1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_growing_state_decodes_eagerly(capsys):
    model = create_model("spiking_lm_tiny", **SIZES, twin="ann").cuda().eval()
    ids = torch.randint(0, 256, (1, 4), device="cuda")
    with torch.no_grad():
        assert len(list(stream_tokens(model, ids, 6, temperature=0, graph=True))) == 6
    assert "decoding eagerly" in capsys.readouterr().err
