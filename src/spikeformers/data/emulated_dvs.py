"""EMULATED event data: a static image dataset seen by a simulated event camera (not a recording).

The simulated sensor looks at each image while it makes small saccades, as in the N-MNIST recordings
(Orchard et al. 2015, https://doi.org/10.3389/fnins.2015.00437): the view moves along a closed
triangle (0, 0) -> (a/2, a) -> (a, 0) -> (0, 0) pixels (x, y) at constant speed, sampled at
`frames * substeps` positions (bilinear sub-pixel shifts, edges extended). Each pixel keeps the log
intensity L = log(I + eps) at which it last fired (ESIM/v2e-style); at every position it emits
floor(|L - L_ref| / threshold) events, ON when L rose and OFF when it fell, and moves L_ref by
that many thresholds. Events are counted into `frames` frames `[T, 2, H, W]` (channel 0 OFF, 1 ON).
Colour images use their luminance 0.299 R + 0.587 G + 0.114 B. The emulation is deterministic
(no noise, no threshold mismatch).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from .base import ArrayDataset
from .registry import DATASETS, create_dataset, dataset_info

__all__ = ["emulated_dvs", "emulate_events", "saccade_path"]


def saccade_path(n: int, amplitude: float) -> Tensor:
    """`n + 1` (dx, dy) positions `[n + 1, 2]` at equal steps along the closed saccade triangle."""
    a = amplitude
    v = torch.tensor([[0.0, 0.0], [a / 2, a], [a, 0.0], [0.0, 0.0]], dtype=torch.float64)
    seg = (v[1:] - v[:-1]).norm(dim=1)  # edge lengths
    cum = torch.cat([torch.zeros(1, dtype=torch.float64), seg.cumsum(0)])
    s = torch.linspace(0, float(cum[-1]), n + 1, dtype=torch.float64)
    k = torch.searchsorted(cum, s, right=True).clamp(1, 3) - 1  # edge of each position
    frac = ((s - cum[k]) / seg[k]).clamp(0, 1)[:, None]
    return (v[k] + frac * (v[k + 1] - v[k])).float()


def _shifted(img: Tensor, dx: float, dy: float) -> Tensor:
    """`img [N, 1, H, W]` seen from a view moved by (dx, dy) pixels (bilinear, edges extended)."""
    N, _, H, W = img.shape
    theta = torch.tensor([[1.0, 0.0, 2 * dx / W], [0.0, 1.0, 2 * dy / H]], dtype=img.dtype).expand(N, 2, 3)
    grid = F.affine_grid(theta, [N, 1, H, W], align_corners=False)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)


@torch.no_grad()
def emulate_events(
    images: Tensor, frames: int, *, threshold: float = 0.2, amplitude: float = 2.0, substeps: int = 4,
    eps: float = 0.05, chunk: int = 2048,
) -> Tensor:
    """uint8 images `[N, C, H, W]` -> event counts `[N, frames, 2, H, W]` uint8 (see the module docstring)."""
    N, C, H, W = images.shape
    path = saccade_path(frames * substeps, amplitude)
    out = torch.zeros(N, frames, 2, H, W, dtype=torch.uint8)
    lum = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1) if C == 3 else None
    for i in range(0, N, chunk):
        x = images[i : i + chunk].float() / 255
        x = (x * lum).sum(1, keepdim=True) if lum is not None else x.mean(1, keepdim=True)  # [n, 1, H, W]
        ref = torch.log(_shifted(x, *path[0].tolist()) + eps)
        counts = torch.zeros(x.shape[0], frames, 2, H, W)
        for k in range(1, len(path)):
            d = torch.log(_shifted(x, *path[k].tolist()) + eps) - ref  # [n, 1, H, W]
            n_on = torch.floor(d.clamp(min=0) / threshold)
            n_off = torch.floor((-d).clamp(min=0) / threshold)
            ref += (n_on - n_off) * threshold
            t = (k - 1) // substeps
            counts[:, t, 0:1] += n_off
            counts[:, t, 1:2] += n_on
        out[i : i + chunk] = counts.clamp(max=255).to(torch.uint8)
    return out


@DATASETS.register("emulated_dvs", layout="events", frames=8)
def emulated_dvs(
    root: Optional[str] = None,
    *,
    source: str = "mnist",
    frames: int = 8,
    threshold: float = 0.2,
    amplitude: float = 2.0,
    substeps: int = 4,
    max_train: Optional[int] = None,
    max_test: Optional[int] = None,
) -> ArrayDataset:
    """EMULATED events of the image dataset `source` (e.g. "mnist", "cifar10", "digits") as
    `[N, frames, 2, H, W]` uint8 counts; `root` goes to the source; `max_train` / `max_test` keep
    the first images only."""
    if not isinstance(frames, int) or frames < 1 or substeps < 1 or threshold <= 0 or amplitude < 0:
        raise ConfigError(f"emulated_dvs: need frames >= 1, substeps >= 1, threshold > 0, amplitude >= 0; got "
                          f"frames={frames}, substeps={substeps}, threshold={threshold}, amplitude={amplitude}")
    if source == "emulated_dvs":
        raise ConfigError("emulated_dvs: source must be an image dataset, not emulated_dvs itself")
    declared = dataset_info(source).get("layout", "image")
    if declared != "image":
        raise ConfigError(f"emulated_dvs: source {source!r} has layout {declared!r}; an image dataset is needed")
    src = create_dataset(source, root=root)
    if src.layout != "image":
        raise ConfigError(f"emulated_dvs: source {source!r} has layout {src.layout!r}; an image dataset is needed")
    xtr, xte = src.train_x[:max_train], src.test_x[:max_test]
    opts = dict(threshold=threshold, amplitude=amplitude, substeps=substeps)
    return ArrayDataset(
        name=f"emulated_dvs({source})",
        train_x=emulate_events(xtr, frames, **opts), train_y=src.train_y[: len(xtr)],
        test_x=emulate_events(xte, frames, **opts), test_y=src.test_y[: len(xte)],
        num_classes=src.num_classes, in_chans=2, img_size=src.img_size,
        flip=src.flip, crop_padding=src.crop_padding, layout="events", frames=frames,
    )
