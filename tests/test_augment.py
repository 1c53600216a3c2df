"""On-device augmentation and DeviceLoader, against naive per-sample references."""
import itertools

import pytest
import torch

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
