"""Knowledge distillation from a frozen teacher: the task's loss plus a KL term on logits and, optionally,
feature matching at block outputs.

    L = L_task(s, y) + weight * tau^2 * KL(softmax(t / tau) || softmax(s / tau)) + features * MSE(F_s, F_t)

(Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network", arXiv 1503.02531, 2015: the
tau^2 keeps the soft term's gradients on the scale of the hard term's as tau changes.) The KL is summed
over the classes (the last axis of what the task's `distill_logits` returns) and averaged over everything
else: images, tokens, pixels. A task whose classes are independent sigmoids (detection, `distill_kind =
"sigmoid"`) gets the binary KL of sigmoid(t / tau) against sigmoid(s / tau) per class, summed over the
classes and averaged over locations.

Feature matching (FitNets, Romero et al., ICLR 2015, at the blocks' outputs): the output of every block
`blocks.<i>` of the student, averaged over its time axis (the first), against the teacher's block i,
averaged the same way (an ANN twin has one step), the MSEs averaged over the blocks; both models need
the same number of blocks with outputs of equal shape.

The teacher runs inside the training step (`train/step.py` calls `teach(x)` under the student's
autocast, so a CUDA graph captures it too), under `torch.no_grad`, in eval mode; it is not part of the
student, so evaluation, energy counts and firing-rate monitors never see it.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._pytree import tree_map

from ..errors import ConfigError

__all__ = ["DistillationLoss", "kl_softmax", "kl_sigmoid", "block_modules"]

_BLOCK = re.compile(r"(^|\.)blocks\.(\d+)$")


def kl_softmax(student: Tensor, teacher: Tensor, tau: float) -> Tensor:
    """tau^2 KL(softmax(teacher / tau) || softmax(student / tau)) over the last axis, mean over the rest."""
    log_p_s = F.log_softmax(student.float() / tau, dim=-1)
    log_p_t = F.log_softmax(teacher.float() / tau, dim=-1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1).mean() * tau * tau


def kl_sigmoid(student: Tensor, teacher: Tensor, tau: float) -> Tensor:
    """tau^2 sum over classes (last axis) of the Bernoulli KL of sigmoid(teacher / tau) against
    sigmoid(student / tau), mean over the rest."""
    s, t = student.float() / tau, teacher.float() / tau
    p_t = torch.sigmoid(t)
    kl = p_t * (F.logsigmoid(t) - F.logsigmoid(s)) + (1 - p_t) * (F.logsigmoid(-t) - F.logsigmoid(-s))
    return kl.sum(-1).mean() * tau * tau


def block_modules(model: nn.Module) -> List[nn.Module]:
    """The modules named `blocks.<i>` (the outermost such list, in order): where block outputs are read."""
    found: List[Tuple[str, int, nn.Module]] = []
    for name, m in model.named_modules():
        hit = _BLOCK.search(name)
        if hit and not any(name.startswith(prefix + ".") for prefix, _, _ in found):
            found.append((name[: hit.start(2)], int(hit.group(2)), m))
    if not found:
        return []
    first = found[0][0]  # `blocks.` or `backbone.model.blocks.`: only one list of blocks
    return [m for prefix, _, m in sorted((f for f in found if f[0] == first), key=lambda f: f[1])]


class DistillationLoss(nn.Module):
    """`loss(out, target, taught)`: the task's loss `base(out, target)` plus the distillation terms against
    `taught = teach(x)` (the teacher's output and block features, computed by the training step)."""

    def __init__(self, base: nn.Module, student: nn.Module, teacher: nn.Module, logits: Callable[[Any], Tensor],
                 kind: str = "softmax", weight: float = 1.0, temperature: float = 2.0, features: float = 0.0):
        super().__init__()
        if kind not in ("softmax", "sigmoid"):
            raise ValueError(f"distillation kind must be 'softmax' or 'sigmoid', got {kind!r}")
        self.base, self.teacher, self.logits, self.kind = base, teacher, logits, kind
        self.weight, self.temperature, self.features = float(weight), float(temperature), float(features)
        for p in teacher.parameters():
            p.requires_grad_(False)
        teacher.eval()
        self._student: Dict[int, Tensor] = {}
        self._teacher: Dict[int, Tensor] = {}
        self._hooks: List[Any] = []
        if self.features:
            s_blocks, t_blocks = block_modules(student), block_modules(teacher)
            if not s_blocks or len(s_blocks) != len(t_blocks):
                raise ConfigError(f"distill.features needs blocks (blocks.<i>) in both models with equal outputs; the "
                                  f"student has {len(s_blocks)} blocks, the teacher {len(t_blocks)}")
            for i, (s, t) in enumerate(zip(s_blocks, t_blocks)):
                self._hooks.append(s.register_forward_hook(self._keeper(self._student, i, training_only=True)))
                self._hooks.append(t.register_forward_hook(self._keeper(self._teacher, i, training_only=False)))

    @staticmethod
    def _keeper(store: Dict[int, Tensor], i: int, training_only: bool):
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if isinstance(output, Tensor) and (module.training or not training_only):
                store[i] = output  # [T, B, ...]; a recomputation in backward overwrites it with the same values
        return hook

    @property
    def per_step(self) -> bool:
        return bool(getattr(self.base, "per_step", False))

    def train(self, mode: bool = True) -> "DistillationLoss":
        super().train(mode)
        self.teacher.eval()  # always: dropout off, BatchNorm on its running statistics
        return self

    @torch.no_grad()
    def teach(self, x: Tensor) -> Tuple[Any, List[Tensor]]:
        """The teacher's output on `x` (float32) and its block outputs (mean over time), without gradients."""
        self._teacher.clear()
        out = tree_map(lambda t: t.float() if isinstance(t, Tensor) else t, self.teacher(x))
        feats = [self._teacher[i].float().mean(0) for i in sorted(self._teacher)] if self.features else []
        self._teacher.clear()
        return out, feats

    def forward(self, out: Any, target: Any, taught: Optional[Tuple[Any, List[Tensor]]] = None) -> Tensor:
        loss = self.base(out, target)
        if taught is None:
            return loss
        t_out, t_feats = taught
        if self.weight:
            s = self.logits(out.mean(0) if self.per_step else out)  # TET's per-step logits: their mean
            t = self.logits(t_out)
            if s.shape != t.shape:
                raise ConfigError(f"distill.teacher: the teacher's logits have shape {list(t.shape)}, the student's "
                                  f"{list(s.shape)}")
            kl = kl_softmax if self.kind == "softmax" else kl_sigmoid
            loss = loss + self.weight * kl(s, t, self.temperature)
        if self.features:
            s_feats = [self._student[i].float().mean(0) for i in sorted(self._student)]
            self._student.clear()
            if len(s_feats) != len(t_feats):
                raise ConfigError(f"distill.features: the student's forward gave {len(s_feats)} block outputs, the "
                                  f"teacher's {len(t_feats)}")
            for i, (a, b) in enumerate(zip(s_feats, t_feats)):
                if a.shape != b.shape:
                    raise ConfigError(f"distill.features: block {i} of the student gives {list(a.shape)} (mean over "
                                      f"time), the teacher's {list(b.shape)}; feature matching needs equal outputs")
            loss = loss + self.features * sum(F.mse_loss(a, b) for a, b in zip(s_feats, t_feats)) / len(s_feats)
        return loss

    def extra_repr(self) -> str:
        return (f"kind={self.kind}, weight={self.weight}, temperature={self.temperature}, "
                f"features={self.features}")
