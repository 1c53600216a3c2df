"""SpikeGPT (Zhu, Zhao, Li, Eshraghian, TMLR 2024, arXiv 2302.13939): a spiking RWKV-4 language model.

    x = SN(Embedding(ids))                                      [B, N, D]  binary (Heaviside, ATan surrogate)
    x = LN0(x)                                                  (first block only)
    x = x + LIF(TimeMix(LN1(x)));  x = x + LIF(ChannelMix(LN2(x)));  x = Dropout(x)   L blocks
    logits = Linear(LN(x))                                      [B, N, vocab]

As in the official code (ridgerchu/SpikeGPT, `src/model.py`, model type "RWKV"): each branch's output goes
through a multi-step LIF neuron (tau 2, V_th 1, hard reset to 0, ATan surrogate alpha 2, reset not
detached) whose time axis is the token sequence itself, so the branch adds binary spikes to the
residual stream and the neuron's membrane carries information from token to token. There is no extra
time axis T and no position embedding: order comes from the token shift and the WKV recurrence.

TimeMix (the spiking RWKV "self-attention"): xk, xv, xr mix each token with the previous one per channel
(x mu + x_prev (1 - mu)); k, v, r = K(xk), V(xv), R(xr); out = O(sigmoid(r) * WKV(k, v)) with, per channel,

    WKV_t = (sum_{i<t} e^{(t-1-i) w + k_i} v_i + e^{u + k_t} v_t) / (sum_{i<t} e^{(t-1-i) w + k_i} + e^{u + k_t})

w = -exp(time_decay), u = time_first. This is a softmax over the past tokens i of the logits
(t-1-i) w + k_i (and u + k_t for i = t), applied to v; `wkv` computes it exactly in chunks: inside a
chunk the full softmax, across chunks a carried (log-mass, mean) pair, so memory is O(N chunk) and the
Python loop runs N / chunk times. On CUDA a Triton kernel computes the recurrence itself, one pass over the
tokens each way (`kernels/wkv.py`, `wkv_backend`). `wkv_step` is the same recurrence one token at a time
(generation).
ChannelMix: sigmoid(R(xr)) * V(relu(K(xk))^2), hidden 4 D.

Parameter names and counts follow the official model: per block 13 D^2 + 11 D (+ 2 D for block 0's
LN0), plus 2 vocab D (embedding, head) and 2 D (the final LN); tests/test_spikegpt.py checks the two
published configurations. Initialisation is the official one as its training script runs it: the
"fancy" time_decay / time_first / time_mix values, PyTorch's defaults for Linear, Embedding, LayerNorm.
Not part of the model: the official trainer's L2Wrap logit penalty (a loss term).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..kernels import kernels_for  # imports no Triton until a kernel is about to run
from ..neurons import create_surrogate, heaviside
from ..neurons.registry import neuron_factory
from ._builder import build_config
from .decode import TokenModel
from .lm import LMState
from .registry import register_model

__all__ = ["SpikeGPTConfig", "SpikeGPT", "wkv", "wkv_step", "SPIKEGPT_LIF"]

#: the official neuron: spikingjelly's MultiStepLIFNode(tau=2, v_threshold=1, ATan(alpha=2)), hard reset to 0,
#: detach_reset False (spikingjelly's default)
SPIKEGPT_LIF = {"tau": 2.0, "v_threshold": 1.0, "v_reset": 0.0, "surrogate": "atan", "alpha": 2.0, "detach_reset": False}
_EMPTY = -1e30  # log-mass of an empty past (the official kernel's MIN_VALUE role): exp() of it is 0 in fp32


@dataclass
class SpikeGPTConfig:
    vocab_size: int = 5458        # token ids in [0, vocab_size) (enwik8's characters in the official 46M run)
    block_size: int = 1024        # longest sequence (ctx_len)
    dim: int = 512                # D (n_embd)
    depth: int = 12               # number of blocks (n_layer)
    mlp_ratio: float = 4.0        # ChannelMix hidden = mlp_ratio * D (4 in the official code)
    dropout: float = 0.03         # after every block (the official value)
    neuron: str = "lif"           # the branch neurons; their time axis is the token sequence
    neuron_opts: Dict[str, Any] = field(default_factory=lambda: dict(SPIKEGPT_LIF))
    spike_embedding: bool = True  # Heaviside(embedding) with an ATan(2) surrogate, as GPT.forward does
    wkv_chunk: int = 16           # chunk of the parallel WKV: work, memory ~ chunk; loop ~ N / chunk; same result
    wkv_backend: str = "auto"     # "auto": the Triton kernel on CUDA (kernels/wkv.py), else the chunked form;
                                  # "triton": the kernel (Triton's interpreter on the CPU); "torch": chunked;
                                  # under torch.compile always the chunked form (the kernel is no custom op)
    twin: Optional[str] = None    # "ann": ReLU for every LIF and a real embedding (same layout, no spikes)


# --- the WKV recurrence ------------------------------------------------------------------------------
def _wide(*ts: Tensor) -> Tuple[Tensor, ...]:
    """fp16/bf16 (autocast) in fp32, as the official kernel computes; fp32 and fp64 as they are."""
    dtype = torch.promote_types(ts[-1].dtype, torch.float32)
    return tuple(t.to(dtype) for t in ts)


def wkv(w: Tensor, u: Tensor, k: Tensor, v: Tensor, chunk: int = 16) -> Tensor:
    """WKV of every token at once (training), exact and causal: k, v [B, N, C]; w (< 0), u [C] -> [B, N, C].

    Per chunk of L tokens starting at s, token t (j = t - s) sees L + 1 slots: the carried past with logit
    j w + Z (Z the log of the past's mass e^{(s-1-i) w + k_i} summed over i < s) and value M (the past's
    mass-weighted mean of v), the chunk's earlier tokens i with logit (t-1-i) w + k_i, and itself with
    u + k_t; the output is the softmax-weighted mean of the slots' values (in fp32 at least)."""
    dtype, (B, N, C) = v.dtype, v.shape
    w, u, k, v = _wide(w, u, k, v)
    L = max(1, min(chunk, N))
    pad = (-N) % L
    if pad:  # padding after the last token changes no earlier output
        k, v = F.pad(k, (0, 0, 0, pad)), F.pad(v, (0, 0, 0, pad))
    n = k.shape[1] // L
    k, v = k.view(B, n, L, C), v.view(B, n, L, C)
    j = torch.arange(L, device=k.device, dtype=k.dtype)
    # what each chunk adds to the carried past, as mass at the next chunk's start: logits (L-1-j) w + k_j
    own = (L - 1 - j)[:, None] * w + k                                   # [B, n, L, C]
    own_z = torch.logsumexp(own, 2)                                      # [B, n, C]
    own_m = (own.softmax(2) * v).sum(2)                                  # [B, n, C]
    Z, M = [k.new_full((B, C), _EMPTY)], [k.new_zeros(B, C)]
    for c in range(n - 1):  # carry across chunks: Z_{c+1} = logaddexp(Z_c + L w, own_z_c)
        z = torch.logaddexp(Z[-1] + L * w, own_z[:, c])
        M.append(torch.exp(Z[-1] + L * w - z) * M[-1] + torch.exp(own_z[:, c] - z) * own_m[:, c])
        Z.append(z)
    Z, M = torch.stack(Z, 1), torch.stack(M, 1)                          # [B, n, C] at each chunk's start
    dist = j[:, None] - 1 - j[None, :]                                   # t - 1 - i            [L(t), L(i)]
    inside = (dist[..., None] * w + k[:, :, None]).diagonal_scatter(     # [B, n, L, L, C]
        (u + k).transpose(2, 3), 0, 2, 3)                                # i = t: u + k_t
    inside = inside.masked_fill((dist < -1)[:, :, None], float("-inf"))  # i > t: the future
    carry = j[:, None] * w + Z[:, :, None]                               # [B, n, L, C]
    p = torch.cat([carry[:, :, :, None], inside], 3).softmax(3)          # [B, n, L, 1 + L, C]
    y = p[:, :, :, 0] * M[:, :, None] + (p[:, :, :, 1:] * v[:, :, None]).sum(3)
    return y.reshape(B, n * L, C)[:, :N].to(dtype)


def wkv_step(w: Tensor, u: Tensor, k: Tensor, v: Tensor, state: Optional[Tuple[Tensor, Tensor]] = None
             ) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
    """One token of WKV: k, v [B, C]; state (Z, M) [B, C] (log-mass of the past at this token, its mean v).

    y = softmax([Z, u + k]) . [M, v]; then Z' = logaddexp(Z + w, k), M' = the mean of [M, v] weighted so."""
    dtype = v.dtype
    w, u, k, v = _wide(w, u, k, v)
    Z, M = (k.new_full(k.shape, _EMPTY), k.new_zeros(k.shape)) if state is None else state
    now = u + k
    top = torch.maximum(Z, now)
    a, b = torch.exp(Z - top), torch.exp(now - top)
    y = (a * M + b * v) / (a + b)
    past = Z + w
    z = torch.logaddexp(past, k)
    M = torch.exp(past - z) * M + torch.exp(k - z) * v
    return y.to(dtype), (z, M)


# --- blocks --------------------------------------------------------------------------------------------
def _shift(x: Tensor, prev: Optional[Tensor]) -> Tensor:
    """The previous token of each position [B, N, D] (zeros before the first, or `prev [B, 1, D]`)."""
    return F.pad(x[:, :-1], (0, 0, 1, 0)) if prev is None else torch.cat([prev, x[:, :-1]], 1)


def _ramp(dim: int) -> Tensor:
    return torch.arange(dim, dtype=torch.float32) / dim  # i / D, the official time_mix base


class TimeMix(nn.Module):
    """[B, N, D] -> [B, N, D]: O(sigmoid(R(xr)) * WKV(K(xk), V(xv))) (RWKV-4 TimeMix, as SpikeGPT uses it)."""

    def __init__(self, dim: int, layer: int, depth: int, chunk: int, backend: str = "auto"):
        super().__init__()
        self.chunk, self.backend = chunk, backend
        deep = layer / max(depth - 1, 1)   # 0 .. 1 over the blocks
        shallow = 1.0 - layer / depth      # 1 .. ~0
        h = torch.arange(dim, dtype=torch.float32) / max(dim - 1, 1)
        self.time_decay = nn.Parameter(-5 + 8 * h ** (0.7 + 1.3 * deep))            # slow to fast decay
        zigzag = torch.tensor([(i + 1) % 3 - 1 for i in range(dim)], dtype=torch.float32) * 0.5
        self.time_first = nn.Parameter(torch.full((dim,), math.log(0.3)) + zigzag)  # bonus u of the current token
        x = _ramp(dim)
        self.time_mix_k = nn.Parameter(x ** shallow)
        self.time_mix_v = nn.Parameter(x ** shallow + 0.3 * deep)
        self.time_mix_r = nn.Parameter(x ** (0.5 * shallow))
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)
        self.receptance = nn.Linear(dim, dim, bias=False)
        self.output = nn.Linear(dim, dim, bias=False)

    def _krv(self, x: Tensor, xx: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        mix = lambda mu: x * mu + xx * (1 - mu)  # noqa: E731 - per-channel interpolation with the previous token
        return self.key(mix(self.time_mix_k)), self.receptance(mix(self.time_mix_r)), self.value(mix(self.time_mix_v))

    def forward(self, x: Tensor) -> Tensor:  # [B, N, D]
        k, r, v = self._krv(x, _shift(x, None))
        w = -torch.exp(self.time_decay)
        kernel = None if torch.compiler.is_compiling() else kernels_for(v, self.backend, "wkv", "SpikeGPT WKV")
        y = wkv(w, self.time_first, k, v, self.chunk) if kernel is None else kernel.wkv(w, self.time_first, k, v)
        return self.output(torch.sigmoid(r) * y)

    def step(self, x: Tensor, state: Any) -> Tuple[Tensor, Any]:  # x [B, 1, D]; state (x_prev, (Z, M))
        prev, s = state if state is not None else (torch.zeros_like(x), None)
        k, r, v = self._krv(x, prev)
        y, s = wkv_step(-torch.exp(self.time_decay), self.time_first, k[:, 0], v[:, 0], s)
        return self.output(torch.sigmoid(r) * y[:, None]), (x, s)


class ChannelMix(nn.Module):
    """[B, N, D] -> [B, N, D]: sigmoid(R(xr)) * V(relu(K(xk))^2), hidden `hidden` (RWKV-4 ChannelMix)."""

    def __init__(self, dim: int, hidden: int, layer: int, depth: int):
        super().__init__()
        x = _ramp(dim) ** (1.0 - layer / depth)
        self.time_mix_k = nn.Parameter(x.clone())
        self.time_mix_r = nn.Parameter(x.clone())
        self.key = nn.Linear(dim, hidden, bias=False)
        self.receptance = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(hidden, dim, bias=False)

    def _mix(self, x: Tensor, xx: Tensor) -> Tensor:
        xk = x * self.time_mix_k + xx * (1 - self.time_mix_k)
        xr = x * self.time_mix_r + xx * (1 - self.time_mix_r)
        return torch.sigmoid(self.receptance(xr)) * self.value(torch.relu(self.key(xk)).square())

    def forward(self, x: Tensor) -> Tensor:
        return self._mix(x, _shift(x, None))

    def step(self, x: Tensor, prev: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        return self._mix(x, torch.zeros_like(x) if prev is None else prev), x


class SpikeGPTBlock(nn.Module):
    """x + SN(TimeMix(LN1(x))), then x + SN(ChannelMix(LN2(x))), dropout; LN0 first in block 0. [B, N, D]."""

    def __init__(self, cfg: SpikeGPTConfig, layer: int):
        super().__init__()
        neuron = neuron_factory(cfg.neuron, **cfg.neuron_opts)
        self.ln0 = nn.LayerNorm(cfg.dim) if layer == 0 else None
        self.ln1 = nn.LayerNorm(cfg.dim)
        self.ln2 = nn.LayerNorm(cfg.dim)
        self.att = TimeMix(cfg.dim, layer, cfg.depth, cfg.wkv_chunk, cfg.wkv_backend)
        self.ffn = ChannelMix(cfg.dim, int(cfg.dim * cfg.mlp_ratio), layer, cfg.depth)
        self.lif1, self.lif2 = neuron(), neuron()
        self.drop = nn.Dropout(cfg.dropout)

    @staticmethod
    def _fire(neuron: nn.Module, y: Tensor) -> Tensor:
        return neuron(y.transpose(0, 1)).transpose(0, 1)  # the neuron's time axis: tokens [N, B, D]

    def forward(self, x: Tensor) -> Tensor:  # [B, N, D]
        if self.ln0 is not None:
            x = self.ln0(x)
        x = x + self._fire(self.lif1, self.att(self.ln1(x)))
        x = x + self._fire(self.lif2, self.ffn(self.ln2(x)))
        return self.drop(x)

    def step(self, x: Tensor, state: Any) -> Tuple[Tensor, Any]:  # [B, 1, D]; state (att, ffn x_prev, v1, v2)
        att, prev, v1, v2 = state if state is not None else (None, None, None, None)
        if self.ln0 is not None:
            x = self.ln0(x)
        y, att = self.att.step(self.ln1(x), att)
        s, v1 = self.lif1.step(y[:, 0], v1)
        x = x + s[:, None]
        y, prev = self.ffn.step(self.ln2(x), prev)
        s, v2 = self.lif2.step(y[:, 0], v2)
        return self.drop(x + s[:, None]), (att, prev, v1, v2)


def _check(cfg: SpikeGPTConfig) -> None:
    if cfg.twin not in (None, "ann"):
        raise ValueError(f"SpikeGPT twin must be 'ann' or null, got {cfg.twin!r}")
    if not isinstance(cfg.wkv_chunk, int) or isinstance(cfg.wkv_chunk, bool) or cfg.wkv_chunk < 1:
        raise ValueError(f"SpikeGPT wkv_chunk must be a positive integer, got {cfg.wkv_chunk!r}")
    if cfg.wkv_backend not in ("auto", "triton", "torch"):
        raise ValueError(f"SpikeGPT wkv_backend must be one of auto, triton, torch, got {cfg.wkv_backend!r}")
    if not 0 <= cfg.dropout < 1:
        raise ValueError(f"SpikeGPT dropout must be in [0, 1), got {cfg.dropout!r}")
    if cfg.twin == "ann":  # same layout, ReLU neurons, a real embedding
        cfg.neuron, cfg.neuron_opts, cfg.spike_embedding = "relu", {}, False


class SpikeGPT(TokenModel, nn.Module):
    """`forward(ids [B, N]) -> logits [B, N, vocab]`; `step(ids [B], state) -> (logits [B, vocab], state)`."""

    def __init__(self, cfg: SpikeGPTConfig):
        super().__init__()
        _check(cfg)
        self.cfg = cfg
        self.emb = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.spike = create_surrogate("atan", 2.0) if cfg.spike_embedding else None
        self.blocks = nn.ModuleList(SpikeGPTBlock(cfg, i) for i in range(cfg.depth))
        self.ln_out = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)


    def _embed(self, ids: Tensor) -> Tensor:
        x = self.emb(ids)
        return x if self.spike is None else heaviside(x, self.spike)  # spikes: emb >= 0

    def forward(self, ids: Tensor) -> Tensor:
        self._check_ids(ids, 2)
        x = self._embed(ids)  # [B, N, D]
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln_out(x))

    def step(self, ids: Tensor, state: Optional[LMState] = None) -> Tuple[Tensor, LMState]:
        """Logits of the next token after `ids` (the token at position `state.pos`); inference (eval mode).
        Per block the state is the two branches' previous normed inputs, the WKV (log-mass, mean) pair and the
        two LIF membranes, all [B, D]: constant size, so a step replays as a CUDA graph."""
        self._check_ids(ids, 1)
        pos = 0 if state is None else state.pos
        layers: List[Any] = [None] * len(self.blocks) if state is None else state.layers
        x = self._embed(ids)[:, None]  # [B, 1, D]
        new = []
        for blk, s in zip(self.blocks, layers):
            x, s = blk.step(x, s)
            new.append(s)
        return self.head(self.ln_out(x))[:, 0], LMState(pos + 1, new)




def _spikegpt(defaults: Dict[str, Any], overrides: Dict[str, Any]) -> SpikeGPT:
    if overrides.get("neuron") is not None and "neuron_opts" not in overrides:
        overrides = {**overrides, "neuron_opts": {}}  # the default options belong to the default neuron
    return SpikeGPT(build_config(SpikeGPTConfig, defaults, overrides, "SpikeGPT"))


_SOURCE = "Zhu et al., TMLR 2024 (arXiv 2302.13939)"


@register_model(family="lm", note=f"SpikeGPT-46M, {_SOURCE}: 12 x 512, enwik8 characters (vocab 5458), ctx 1024")
def spikegpt_46m(**kw):
    return _spikegpt(dict(vocab_size=5458, block_size=1024, dim=512, depth=12), kw)


@register_model(family="lm", note=f"SpikeGPT-216M, {_SOURCE}: 18 x 768, GPT-NeoX tokenizer (vocab 50277), ctx 1024")
def spikegpt_216m(**kw):
    return _spikegpt(dict(vocab_size=50277, block_size=1024, dim=768, depth=18), kw)


@register_model(family="lm", note="tiny SpikeGPT for tests and CPUs")
def spikegpt_tiny(**kw):
    return _spikegpt(dict(vocab_size=64, block_size=32, dim=32, depth=2, wkv_chunk=8), kw)
