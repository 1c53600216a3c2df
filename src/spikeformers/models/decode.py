"""Token-by-token decoding of a language model through its explicit-state `step(ids, state)`, replayed as a
CUDA graph where it can be.

    for tok in stream_tokens(model, ids, 200, temperature=0.8, top_k=40): ...

A model decodes here when it has `step(ids [B], state) -> (logits [B, vocab], state)` (state `None` before
the first token) and `cfg.block_size`, its longest context. The state is any nest of tensors plus its
position `pos`; decoding restarts from the last `block_size // 2` tokens when the context is full.

One decoding step of a small model launches a few hundred tiny kernels, and on a GPU their launch costs,
not the arithmetic, set the pace: `DecodeGraph` captures one `step` (its state updates included) as a
CUDA graph and replays it per token. It applies where the state keeps its shapes from token to token
(a spiking LM's recurrent states: the decayed K^T V sums, the token-shift inputs); a state that grows (the
softmax twin's key-value cache) decodes eagerly, as does everything on the CPU. Both compute the same
logits (tests/test_decode.py).
"""
from __future__ import annotations

import math
import sys
from dataclasses import fields, is_dataclass, replace
from typing import Any, Iterator, List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.utils._pytree import tree_flatten, tree_unflatten

__all__ = ["DecodeGraph", "stream_tokens", "sample", "TokenModel"]


def sample(logits: Tensor, temperature: float, top_k: Optional[int], generator: Optional[torch.Generator]) -> Tensor:
    """The next token [B] from logits [B, vocab]: greedy at temperature 0, else sampled (top-k when given)."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]


class DecodeGraph:
    """`model.step` for one token as a CUDA graph, starting from `state` (the state after a prefill).

    `graph(ids [B]) -> logits [B, vocab]` (a buffer, valid until the next call) advances the state in place;
    `load(state)` replaces it (after an eager re-prefill: same shapes). Raises RuntimeError when the step
    cannot be captured or its state changes shape."""

    def __init__(self, model: nn.Module, ids: Tensor, state: Any, warmup: int = 2):
        if not is_dataclass(state) or not hasattr(state, "pos"):
            raise RuntimeError(f"{type(model).__name__}'s decoding state is not a dataclass with a position")
        self.model, self.template = model, state
        self.names = [f.name for f in fields(state) if f.name != "pos"]
        self.ids = ids.clone()
        self.pos = torch.tensor(int(state.pos), device=ids.device)
        leaves, self.spec = tree_flatten([getattr(state, n) for n in self.names])
        if not leaves or not all(isinstance(t, Tensor) for t in leaves):
            raise RuntimeError("the decoding state holds values that are not tensors")
        self.leaves = [t.clone() for t in leaves]
        side = torch.cuda.Stream(ids.device)
        side.wait_stream(torch.cuda.current_stream(ids.device))
        with torch.cuda.stream(side):
            for _ in range(warmup):  # compiles kernels, picks cuBLAS algorithms; the state is not advanced
                self._step()
        torch.cuda.current_stream(ids.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            logits, new = self._step()
            for dst, src in zip(self.leaves, new):
                dst.copy_(src)
            self.pos.add_(1)
        self.logits = logits

    def _step(self) -> Tuple[Tensor, List[Tensor]]:
        state = replace(self.template, pos=self.pos, **dict(zip(self.names, tree_unflatten(self.leaves, self.spec))))
        logits, new = self.model.step(self.ids, state)
        leaves, spec = tree_flatten([getattr(new, n) for n in self.names])
        if spec != self.spec or any(a.shape != b.shape or a.dtype != b.dtype for a, b in zip(leaves, self.leaves)):
            raise RuntimeError("the decoding state changes shape from token to token")
        return logits, leaves

    def load(self, state: Any) -> None:
        leaves, spec = tree_flatten([getattr(state, n) for n in self.names])
        if spec != self.spec or any(a.shape != b.shape for a, b in zip(leaves, self.leaves)):
            raise RuntimeError("the new decoding state has other shapes")
        for dst, src in zip(self.leaves, leaves):
            dst.copy_(src)
        self.pos.fill_(int(state.pos))

    def __call__(self, ids: Tensor) -> Tensor:
        self.ids.copy_(ids)
        self.graph.replay()
        return self.logits


def _graph(model: nn.Module, ids: Tensor, state: Any) -> Optional[DecodeGraph]:
    """A DecodeGraph from `state`, or None (one line on stderr) where the step cannot be replayed as one."""
    try:
        return DecodeGraph(model, ids, state)
    except RuntimeError as e:
        print(f"note: decoding eagerly, without a CUDA graph: {str(e).splitlines()[0]}", file=sys.stderr, flush=True)
        return None


@torch.no_grad()
def stream_tokens(model: nn.Module, ids: Tensor, max_new_tokens: int, temperature: float = 1.0,
                  top_k: Optional[int] = None, generator: Optional[torch.Generator] = None,
                  graph: Optional[bool] = None) -> Iterator[Tensor]:
    """Yield `max_new_tokens` continuations of `ids [B, N]`, one `[B]` tensor at a time, in eval mode.

    `graph`: replay each step as a CUDA graph (None: on CUDA where the state keeps its shapes; False: never)."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    block = model.cfg.block_size
    was_training = model.training
    model.eval()
    use_graph = ids.is_cuda if graph is None else graph
    replay: Optional[DecodeGraph] = None

    def prefill(window: Tensor) -> Tuple[Tensor, Any]:
        """Logits after `window [B, n]` from an empty state, and that state (None when the graph holds it): the
        first token steps eagerly (an empty state has no shapes yet), the others replay the graph."""
        nonlocal replay, use_graph
        logits, state = model.step(window[:, 0], None)
        if use_graph and replay is None:
            replay = _graph(model, window[:, 0], state)
            use_graph = replay is not None
        if replay is None:
            for n in range(1, window.shape[1]):
                logits, state = model.step(window[:, n], state)
            return logits, state
        replay.load(state)
        for n in range(1, window.shape[1]):
            logits = replay(window[:, n])
        return logits, None

    try:
        history = ids
        logits, state = prefill(ids[:, -block:])
        pos = min(ids.shape[1], block)
        for i in range(max_new_tokens):
            nxt = sample(logits, temperature, top_k, generator)
            yield nxt
            if i + 1 == max_new_tokens:
                break
            history = torch.cat([history, nxt[:, None]], 1)
            if pos == block:  # the window is full: restart from its second half
                logits, state = prefill(history[:, -(block // 2):])
                pos = block // 2
            elif replay is not None:
                logits = replay(nxt)
                pos += 1
            else:
                logits, state = model.step(nxt, state)
                pos += 1
    finally:
        model.train(was_training)


class TokenModel:
    """What every language model of the zoo shares (mixed into its nn.Module, which has `cfg.block_size` and
    `step()`): the check of token ids, and sampling through `step()` (`stream`, `generate`)."""

    def _check_ids(self, ids: Tensor, dims: int) -> None:
        what = "[B, N]" if dims == 2 else "[B]"
        if not isinstance(ids, Tensor) or ids.dim() != dims or ids.dtype not in (torch.int64, torch.int32):
            shape = tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__
            name = getattr(self, "model_name", type(self).__name__)
            raise ValueError(f"{name} expects integer token ids {what}, got {shape}")
        if dims == 2 and not 1 <= ids.shape[1] <= self.cfg.block_size:
            raise ValueError(f"sequence length {ids.shape[1]} is outside 1..block_size {self.cfg.block_size}")

    def stream(self, ids: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: Optional[int] = None,
               generator: Optional[torch.Generator] = None, graph: Optional[bool] = None) -> Iterator[Tensor]:
        """Yield `max_new_tokens` sampled continuations of `ids [B, N]`, one `[B]` tensor at a time (temperature 0
        is greedy, `top_k` keeps the k likeliest; on CUDA each step replays as a CUDA graph)."""
        self._check_ids(ids, 2)
        return stream_tokens(self, ids, max_new_tokens, temperature, top_k, generator, graph)

    def generate(self, ids: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: Optional[int] = None,
                 generator: Optional[torch.Generator] = None) -> Tensor:
        """`ids [B, N]` followed by `max_new_tokens` sampled tokens: `[B, N + max_new_tokens]` (see `stream`)."""
        new = [t[:, None] for t in self.stream(ids, max_new_tokens, temperature, top_k, generator)]
        return torch.cat([ids] + new, 1)
