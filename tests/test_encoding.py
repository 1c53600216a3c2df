"""Encoders: documented mappings, seeding, domains."""
import pytest
import torch

from spikeformers import create_encoder, list_encoders


def test_direct_repeats_input():
    x = torch.rand(3, 1, 4, 4)
    y = create_encoder("direct", 5)(x)
    assert y.shape == (5, 3, 1, 4, 4) and all(torch.equal(y[t], x) for t in range(5))


def test_rate_is_bernoulli_with_p_equal_x_and_seeded():
    x = torch.tensor([0.0, 0.25, 0.5, 1.0]).repeat(2000, 1)
    enc = create_encoder("rate", 50, seed=7)
    y = enc(x)
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(y.mean((0, 1)), torch.tensor([0.0, 0.25, 0.5, 1.0]), atol=0.01, rtol=0)
    assert torch.equal(create_encoder("rate", 50, seed=7)(x), y)  # same seed -> same spikes
    assert not torch.equal(create_encoder("rate", 50, seed=8)(x), y)


def test_latency_brighter_fires_earlier_and_zero_never():
    T = 5
    x = torch.tensor([1.0, 0.75, 0.5, 0.25, 0.1, 0.0])
    y = create_encoder("latency", T)(x)
    assert y.sum(0).tolist() == [1, 1, 1, 1, 1, 0]  # at most one spike; zero never fires
    first = y.argmax(0)[:5]
    # t_f = round((1 - x)(T - 1)) = round([0, 1, 2, 3, 3.6]) = [0, 1, 2, 3, 4]
    assert first.tolist() == [0, 1, 2, 3, 4]


def test_encoder_errors():
    with pytest.raises(ValueError, match="valid encoders: direct, latency, rate"):
        create_encoder("poisson", 4)
    with pytest.raises(ValueError, match="T must be a positive integer"):
        create_encoder("direct", 0)
    assert list_encoders() == ["direct", "latency", "rate"]
