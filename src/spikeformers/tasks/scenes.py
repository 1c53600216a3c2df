"""The loaders both dense tasks use: `SceneLoader`s over a `SceneDataset`, augmented with a random
horizontal flip (`data.flip`, default on) and a random shift of up to `data.crop_padding` pixels
(default 4), image, boxes and class map together."""
from __future__ import annotations

from typing import Any, Dict, Tuple
from ..data.scene_loader import SceneLoader

__all__ = ["scene_loaders"]


def scene_loaders(cfg: Any, dataset: Any) -> Tuple[Any, Dict[str, Any]]:
    d = cfg.data
    flip = 0.5 if d.flip is None or d.flip else 0.0
    shift = 4 if d.crop_padding is None else d.crop_padding
    train = SceneLoader(dataset.train_images, dataset.train_boxes, dataset.train_labels, dataset.train_masks,
                        d.batch_size, shuffle=True, seed=cfg.run.seed, flip=flip, shift=shift, drop_last=True)
    test = SceneLoader(dataset.test_images, dataset.test_boxes, dataset.test_labels, dataset.test_masks,
                       d.eval_batch_size, shuffle=False, seed=cfg.run.seed)
    return train, {"test": test}
