"""On-device augmentation and DeviceLoader, against naive per-sample references."""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spikeformers.data import Augment, DeviceLoader, crop_at, random_crop, random_erasing, random_hflip


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def unique_batch(B=16, C=3, H=7, W=9):
    """Strictly positive, all-distinct values: any shift or flip is detectable."""
    return torch.arange(1, B * C * H * W + 1, dtype=torch.float32).reshape(B, C, H, W)


def naive_crop(img, padding, dy, dx):
    """One sample [C, H, W]: pad with zeros, take the window whose top-left is (dy, dx)."""
    C, H, W = img.shape
    out = torch.zeros_like(img)
    for i in range(H):
        for j in range(W):
            si, sj = i + dy - padding, j + dx - padding
            if 0 <= si < H and 0 <= sj < W:
                out[:, i, j] = img[:, si, sj]
    return out


def test_crop_at_matches_naive_loop():
    x, p = unique_batch(), 3
    offsets = torch.randint(0, 2 * p + 1, (x.shape[0], 2), generator=gen(1))
    out = crop_at(x, p, offsets)
    for b in range(x.shape[0]):
        assert torch.equal(out[b], naive_crop(x[b], p, *offsets[b].tolist()))


def test_random_crop_is_a_per_sample_shift():
    x, p = unique_batch(B=64), 2
    out = random_crop(x, p, gen(2))
    assert out.shape == x.shape
    seen = set()
    for b in range(64):
        matches = [
            (dy, dx)
            for dy, dx in itertools.product(range(2 * p + 1), repeat=2)
            if torch.equal(out[b], naive_crop(x[b], p, dy, dx))
        ]
        assert len(matches) == 1  # exactly one shift explains each sample
        seen.add(matches[0])
    assert len(seen) > 10  # offsets are drawn independently per sample
    assert torch.equal(random_crop(x, p, gen(2)), out)  # same generator state, same crops


def test_crop_padding_zero_is_identity():
    x = unique_batch()
    assert torch.equal(random_crop(x, 0, gen()), x)
    assert torch.equal(crop_at(x, 2, torch.full((x.shape[0], 2), 2)), x)


def test_hflip_matches_torch_flip():
    x = unique_batch(B=200, C=1, H=3, W=4)
    out = random_hflip(x, gen(3))
    flipped = torch.tensor([torch.equal(out[b], x[b].flip(-1)) for b in range(200)])
    kept = torch.tensor([torch.equal(out[b], x[b]) for b in range(200)])
    assert torch.all(flipped ^ kept)  # each sample is exactly one of the two
    assert 60 < int(flipped.sum()) < 140
    assert torch.equal(random_hflip(x, gen(), p=0.0), x)
    assert torch.equal(random_hflip(x, gen(), p=1.0), x.flip(-1))


@pytest.mark.parametrize("H,W", [(8, 8), (28, 28), (5, 12)])
def test_erasing_zeroes_one_rectangle_per_sample(H, W):
    B, C = 128, 3
    x = torch.rand(B, C, H, W, generator=gen(4)) + 0.5  # no zeros before erasing
    out = random_erasing(x, gen(5), p=1.0)
    zero = out == 0  # [B, C, H, W]
    assert torch.equal(zero, zero[:, :1].expand_as(zero))  # same rectangle in every channel
    assert torch.equal(out[~zero], x[~zero])  # everything else untouched
    z = zero[:, 0]
    areas = []
    for b in range(B):
        rows, cols = z[b].any(1).nonzero().flatten(), z[b].any(0).nonzero().flatten()
        assert len(rows) > 0  # p=1: every sample is erased
        box = torch.zeros(H, W, dtype=torch.bool)
        box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
        assert torch.equal(z[b], box)  # the zeros form exactly one filled rectangle
        areas.append(box.sum().item() / (H * W))
    assert max(areas) <= 0.6 and sum(areas) / B < 0.3
    assert torch.equal(random_erasing(x, gen(5), p=0.0), x)
    n_erased = (random_erasing(x, gen(6), p=0.5) == 0).flatten(1).any(1).sum()
    assert 30 < int(n_erased) < 98


def test_augment_composes_and_uses_defaults():
    class DS:
        crop_padding, flip = 2, True

    aug = Augment.for_dataset(DS(), erasing=0.25)
    assert (aug.crop_padding, aug.flip, aug.erasing) == (2, True, 0.25)
    assert Augment.for_dataset(DS(), crop_padding=0, flip=False) == Augment(0, False, 0.0)
    x = unique_batch()
    assert torch.equal(Augment()(x, gen()), x)
    assert torch.equal(aug(x, gen(7)), aug(x, gen(7)))
    with pytest.raises(ValueError):
        Augment(erasing=1.5)


# ----------------------------------------------------------------------------- DeviceLoader


def make_loader(n=50, bs=8, **kw):
    x = torch.randint(0, 256, (n, 1, 6, 6), dtype=torch.uint8, generator=gen(8))
    y = torch.arange(n)  # labels double as sample ids
    opts = dict(shuffle=True, augment=Augment(crop_padding=1, flip=True, erasing=0.5), seed=3)
    opts.update(kw)
    return DeviceLoader(x, y, bs, **opts), x


def epoch_batches(loader, epoch):
    loader.set_epoch(epoch)
    return list(loader)


def test_loader_covers_every_sample_once():
    loader, x = make_loader(shuffle=True, augment=None)
    assert len(loader) == 7
    batches = epoch_batches(loader, 0)
    assert len(batches) == 7 and batches[-1][0].shape[0] == 2
    ids = torch.cat([y for _, y in batches])
    assert torch.equal(ids.sort().values, torch.arange(50))
    for xb, yb in batches:  # without augmentation a batch is exactly the stored images / 255
        assert xb.dtype == torch.float32 and torch.equal(xb, x[yb].float() / 255)
    ordered = torch.cat([y for _, y in epoch_batches(make_loader(shuffle=False)[0], 0)])
    assert torch.equal(ordered, torch.arange(50))


def test_loader_is_a_function_of_seed_and_epoch():
    a, _ = make_loader()
    run = [epoch_batches(a, e) for e in range(3)]  # an uninterrupted run
    resumed, _ = make_loader()  # a fresh loader resumed at epoch 2
    for (xa, ya), (xb, yb) in zip(run[2], epoch_batches(resumed, 2)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(torch.cat([y for _, y in run[0]]), torch.cat([y for _, y in run[1]]))
    other_seed, _ = make_loader(seed=4)
    assert not torch.equal(run[0][0][1], epoch_batches(other_seed, 0)[0][1])
    for xb, _ in run[0]:
        assert xb.min() >= 0 and xb.max() <= 1


def test_loader_drop_last_and_validation():
    loader, _ = make_loader(drop_last=True)
    assert len(loader) == 6 and all(len(y) == 8 for _, y in loader)
    with pytest.raises(ValueError, match="uint8"):
        DeviceLoader(torch.zeros(4, 1, 2, 2), torch.zeros(4, dtype=torch.long), 2, shuffle=False, augment=None, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        make_loader(bs=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_loader_on_cuda():
    loader, x = make_loader()
    cuda = DeviceLoader(x.cuda(), torch.arange(50).cuda(), 8, shuffle=True, augment=loader.augment, seed=3)
    b1, b2 = epoch_batches(cuda, 1), epoch_batches(cuda, 1)
    assert b1[0][0].is_cuda and all(torch.equal(p[0], q[0]) for p, q in zip(b1, b2))
    ids = torch.cat([y for _, y in b1]).cpu()
    assert torch.equal(ids.sort().values, torch.arange(50))


# ----------------------------------------------------------------------------- event frames and sequences


def test_crop_and_flip_act_on_every_plane_of_event_frames():
    x = torch.arange(1, 6 * 3 * 2 * 5 * 7 + 1, dtype=torch.float32).reshape(6, 3, 2, 5, 7)  # [B, T, 2, H, W]
    offsets = torch.randint(0, 5, (6, 2), generator=gen(11))
    out = crop_at(x, 2, offsets)
    assert out.shape == x.shape
    for b in range(6):  # the same shift for every time step and polarity: a spatial translation, zero fill
        planes = x[b].reshape(-1, 5, 7)
        want = torch.stack([naive_crop(planes[i : i + 1], 2, *offsets[b].tolist())[0] for i in range(6)])
        assert torch.equal(out[b].reshape(-1, 5, 7), want)
    flipped = random_hflip(x, gen(12), p=1.0)
    assert torch.equal(flipped, x.flip(-1))
    erased = random_erasing(x, gen(13), p=1.0)
    zero = (erased == 0).reshape(6, -1, 5, 7)
    assert torch.equal(zero, zero[:, :1].expand_as(zero))  # one rectangle through all planes


def test_sequence_shift_matches_naive_loop():
    from spikeformers.data import random_shift, shift_at

    x = torch.arange(1, 5 * 9 * 2 + 1, dtype=torch.float32).reshape(5, 9, 2)  # [B, L, F]
    offsets = torch.tensor([0, 1, 3, 6, 3])
    out = shift_at(x, 3, offsets)
    for b in range(5):
        for i in range(9):
            src = i + offsets[b].item() - 3
            want = x[b, src] if 0 <= src < 9 else torch.zeros(2)
            assert torch.equal(out[b, i], want)
    assert torch.equal(random_shift(x, 0, gen()), x)
    aug = Augment(crop_padding=2, spatial=False)
    assert aug(x, gen(1)).shape == x.shape
    with pytest.raises(ValueError, match="not to sequences"):
        Augment(flip=True, spatial=False)


# ----------------------------------------------------------------------------- mixup / cutmix


def test_mixup_blends_with_the_reversed_batch():
    from spikeformers.data import BatchMix

    x = torch.rand(8, 1, 4, 4, generator=gen(1))
    y = torch.arange(8) % 3
    mix = BatchMix(3, mixup=1.0)
    xm, t = mix(x, y, np.random.default_rng(0))
    lam = float(t[0, y[0]]) if y[0] != y[7] else None
    rng = np.random.default_rng(0)
    rng.random()  # prob draw
    lam_ref = rng.beta(1.0, 1.0)
    assert torch.allclose(xm, lam_ref * x + (1 - lam_ref) * x.flip(0))
    want = lam_ref * F.one_hot(y, 3).float() + (1 - lam_ref) * F.one_hot(y.flip(0), 3).float()
    assert torch.allclose(t, want) and torch.allclose(t.sum(1), torch.ones(8))
    assert lam is None or abs(lam - lam_ref) < 1e-6


def test_cutmix_pastes_one_box_and_weights_targets_by_area():
    from spikeformers.data import BatchMix

    x = torch.zeros(4, 2, 3, 8, 8)  # event frames [B, T, 2, H, W]
    x[:2] = 1.0  # samples 0, 1 are ones, their partners 3, 2 zeros
    y = torch.tensor([0, 0, 1, 1])
    xm, t = BatchMix(2, cutmix=1.0)(x, y, np.random.default_rng(3))
    pasted = (xm[0] == 0)  # zeros pasted into sample 0 from sample 3
    area = pasted[0, 0].float().mean().item()
    assert torch.equal(pasted, pasted[:1, :1].expand_as(pasted))  # the same box on every plane
    rows, cols = pasted[0, 0].any(1).nonzero(), pasted[0, 0].any(0).nonzero()
    if area > 0:
        assert pasted[0, 0, rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()  # a rectangle
    assert torch.allclose(t[0], torch.tensor([1 - area, area]))  # target weight = pasted area
    with pytest.raises(ValueError, match="not to sequences"):
        BatchMix(2, cutmix=1.0, spatial=False)


def test_mix_probability_switch_and_off_epoch():
    from spikeformers.data import BatchMix

    x, y = torch.rand(6, 1, 4, 4), torch.arange(6) % 2
    never = BatchMix(2, mixup=1.0, prob=0.0)
    assert not never.enabled
    off = BatchMix(2, mixup=1.0, off_epoch=3)
    assert off.active(2) and not off.active(3)
    xo, to = off(x, y, np.random.default_rng(0), epoch=5)
    assert torch.equal(xo, x) and torch.equal(to, F.one_hot(y, 2).float())
    both = BatchMix(2, mixup=0.5, cutmix=1.0, switch_prob=0.5)
    rng = np.random.default_rng(1)
    kinds = set()
    for _ in range(20):
        xm, _ = both(x, y, rng)
        kinds.add("cutmix" if ((xm == x) | (xm == x.flip(0))).all() else "mixup")
    assert kinds == {"cutmix", "mixup"}


# ----------------------------------------------------------------------------- DeviceLoader layouts


def test_loader_event_frames_are_time_first_counts():
    x = torch.randint(0, 9, (10, 3, 2, 4, 4), dtype=torch.uint8, generator=gen(2))  # [N, T, 2, H, W]
    loader = DeviceLoader(x, torch.arange(10), 4, shuffle=False, augment=None, seed=0, layout="events")
    assert loader.batch_dim == 1
    xb, yb = next(iter(loader))
    assert xb.shape == (3, 4, 2, 4, 4) and xb.is_contiguous()  # [T, B, 2, H, W]
    assert torch.equal(xb, x[:4].transpose(0, 1).float())  # counts, not scaled
    aug = Augment(crop_padding=1, flip=True)
    xa, _ = next(iter(DeviceLoader(x, torch.arange(10), 4, shuffle=True, augment=aug, seed=0, layout="events")))
    assert xa.shape == (3, 4, 2, 4, 4) and xa.sum() <= x.float().sum()
    with pytest.raises(ValueError, match=r"uint8 \[N, T, 2, H, W\]"):
        DeviceLoader(x[:, 0], torch.arange(10), 4, shuffle=False, augment=None, seed=0, layout="events")


def test_loader_sequences_keep_floats_and_scale_uint8():
    xf = torch.randn(10, 7, 2, generator=gen(3))
    xb, _ = next(iter(DeviceLoader(xf, torch.arange(10), 5, shuffle=False, augment=None, seed=0, layout="sequence")))
    assert torch.equal(xb, xf[:5])  # float sequences are used as stored
    xu = torch.randint(0, 256, (10, 7, 1), dtype=torch.uint8, generator=gen(4))
    xb, _ = next(iter(DeviceLoader(xu, torch.arange(10), 5, shuffle=False, augment=None, seed=0, layout="sequence")))
    assert torch.equal(xb, xu[:5].float() / 255)
    with pytest.raises(ValueError, match="unknown layout"):
        DeviceLoader(xf, torch.arange(10), 5, shuffle=False, augment=None, seed=0, layout="video")


def test_loader_mixing_gives_soft_targets_reproducibly():
    from spikeformers.data import BatchMix

    loader, _ = make_loader(mix=BatchMix(50, mixup=0.4, cutmix=1.0))
    a = epoch_batches(loader, 1)
    b = epoch_batches(make_loader(mix=BatchMix(50, mixup=0.4, cutmix=1.0))[0], 1)
    for (xa, ta), (xb, tb) in zip(a, b):
        assert ta.shape == (len(xa), 50) and torch.allclose(ta.sum(1), torch.ones(len(xa)))
        assert torch.equal(xa, xb) and torch.equal(ta, tb)
