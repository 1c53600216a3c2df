"""EMA of the weights: the warm-up decay, the averaged BN statistics and the copied counters, by hand."""
import torch
from torch import nn

from spikeformers.train.ema import EMA


def _model(value: float) -> nn.Module:
    m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    with torch.no_grad():
        for t in list(m.parameters()) + [m[1].running_mean, m[1].running_var]:
            t.fill_(value)
        m[1].num_batches_tracked.fill_(int(value))
    return m


def test_warmup_decay_values():
    ema = EMA(_model(0.0), decay=0.999)
    assert ema.decay_at(0) == 0.1  # (1 + 0) / (10 + 0)
    assert abs(ema.decay_at(90) - 91 / 100) < 1e-12
    assert ema.decay_at(10 ** 6) == 0.999  # capped by the configured decay


def test_update_by_hand():
    ema = EMA(_model(0.0), decay=0.5)
    live = _model(4.0)
    ema.update(live, n=0)  # decay 0.1: 0.1 * 0 + 0.9 * 4
    ema_sd = ema.model.state_dict()
    for name in ("0.weight", "0.bias", "1.weight", "1.running_mean", "1.running_var"):
        assert torch.allclose(ema_sd[name], torch.full_like(ema_sd[name], 3.6)), name
    assert int(ema_sd["1.num_batches_tracked"]) == 4  # integer buffers are copied, not averaged
    ema.update(_model(8.0), n=100)  # decay capped at 0.5: 0.5 * 3.6 + 0.5 * 8
    assert torch.allclose(ema.model[0].weight, torch.full((2, 2), 5.8))
    assert torch.allclose(ema.model[1].running_var, torch.full((2,), 5.8))
    assert not any(p.requires_grad for p in ema.model.parameters())
    assert all(p.requires_grad for p in live.parameters())  # the live model is untouched
    assert torch.equal(live[0].weight, torch.full((2, 2), 4.0))
