"""Spiking causal language model: a pre-norm spiking transformer decoder over tokens, T time steps per token.

    x   = Embedding(ids) + PositionEmbedding(n)                 [B, N, D]
    X   = repeat T times (direct encoding)                      [T, B, N, D]  the real residual stream
    X   = X + Attn(SN(Shift(Norm(X))));  X = X + MLP(Shift(Norm(X)))   L blocks
    logits = Linear(Norm(mean_T(X)))                            [B, N, vocab]

Each branch reads the residual stream through a per-token norm (LayerNorm or RMSNorm over features:
never across tokens, so training is exactly causal) and a spiking neuron, so every Linear and every
attention product sees spikes; it adds a real update back (a membrane shortcut, as in SDT and
Meta-SpikeFormer). Inside, every Linear is followed by the same per-token norm. `Shift` is SpikeGPT's
token shift (`layers/token_shift.py`): each channel mixes in the previous token's value. Causal attention is
any attention with `supports_causal`, built with `causal=True`: for SSA and A2OS2A a chunk-wise linear
attention with a learned per-head decay over tokens and a per-head norm (`attention/causal.py`). The
MLP is `MembraneMLP`: SN -> Linear -> Norm -> SN -> Linear -> Norm. The last norm of each branch
starts at 1/sqrt(2 depth) (GPT-2's scaled residual initialisation).

The default neuron is IF with soft reset (subtract the threshold): over T steps of a steady input x it
fires about T x / V_th times, a uniform rate code of the normalised input, where LIF with hard reset
(every spiking transformer's default) compresses x in [1, 2] into its five levels and loses the rest.
On 1 MB of gcide (2 x 128, 450 steps, CPU) the IF/soft model at T = 4 reached 2.72 bits per byte
against 3.91 for LIF/hard at T = 4 and 2.78 for the ANN twin (docs/language.md). `neuron="ilif"`
(integer training, D spikes per step, with T = 1) trains fastest of all.

Anchors: SpikeGPT (Zhu et al., TMLR 2024, arXiv 2302.13939) streams tokens as the neuron's time axis;
here, as in SpikeBERT (Lv et al., arXiv 2308.15122), every token gets its own T steps and neurons run
over that T axis only, so they carry no state from token to token. Token mixing happens only in the
causal attention. The ANN twin (`twin="ann"`) has the same layout with ReLU for every neuron, causal
softmax attention and T = 1.

Generation passes state explicitly: `logits, state = model.step(ids_t, state)`. Per layer the state is
the decayed running K^T V [T, B, H, d, d] for SSA and A2OS2A, the running sum of K * V (`sdsa`) or of
Q (`qk_channel`), nothing for `qk_token` (per-token masks), a KV cache for `softmax`, and for any other
causal attention a cache of the layer's inputs that the attention replays (correct for every causal
attention, O(n) per token). An attention's own `step(x, state)` method wins. `step` reproduces
`forward` exactly (tested).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import SDSA, SSA, A2OS2A, QKChannelAttention, QKTokenAttention, SoftmaxAttention, merge_heads
from ..attention.base import ATTENTIONS, create_attention
from ..encoding import create_encoder
from ..layers import MembraneMLP
from ..layers.norm import TOKEN_NORMS, create_norm
from ..layers.token_shift import TokenShift
from ..neurons.registry import neuron_factory
from .registry import register_model
from ._builder import apply_twin, build_config
from .decode import TokenModel

__all__ = ["SpikingLMConfig", "SpikingLM", "LMState", "attention_step", "register_attention_step"]


@dataclass
class SpikingLMConfig:
    vocab_size: int = 256         # token ids in [0, vocab_size)
    block_size: int = 1024        # longest sequence (learned position embeddings)
    dim: int = 512                # D
    depth: int = 12               # number of blocks
    num_heads: int = 8
    mlp_ratio: float = 4.0        # MLP hidden = mlp_ratio * D
    T: int = 4                    # spiking time steps per token
    qkv_bias: bool = False        # bias in the Q/K/V Linear (a per-token norm after it cancels it)
    norm: str = "layer"           # per-token norm after every Linear and before every branch: "layer" | "rms"
    token_shift: bool = True      # mix each token's normed input with the previous token's (RWKV/SpikeGPT)
    attention: str = "ssa"        # a causal-capable attention (`supports_causal`), built with causal=True
    attention_opts: Dict[str, Any] = field(default_factory=dict)
    neuron: str = "if"            # neuron registry name, used everywhere a spiking neuron sits
    neuron_opts: Dict[str, Any] = field(default_factory=lambda: {"v_reset": None})  # soft reset (see below)
    encoder: str = "direct"       # embeddings repeated over T (the only encoding of real embeddings)
    twin: Optional[str] = None    # "ann" | "qann" (quantized ReLUs): ReLU neurons, causal softmax attention, T = 1
    weight_bits: Optional[int] = None  # quantize every Linear/Conv weight to this many bits (None: float)


@dataclass
class LMState:
    """Decoding state: the next position (an int; a 0-d tensor inside a CUDA graph) and one state per layer."""

    pos: Union[int, Tensor]
    layers: List[Any]


# --- one token through a causal attention -----------------------------------------------------------
# A stepper maps (attention, x [T, B, 1, D], state) -> (y [T, B, 1, D], state). Attentions may define
# their own `step(x, state)`; otherwise the class's registered stepper is used, else `_replay_step`.
_STEPPERS: Dict[type, Callable] = {}


def register_attention_step(*classes: type) -> Callable:
    def deco(fn: Callable) -> Callable:
        for cls in classes:
            _STEPPERS[cls] = fn
        return fn

    return deco


def _finish(attn: nn.Module, y: Tensor) -> Tensor:
    return attn.proj_neuron(attn.proj(merge_heads(y)))  # [T, B, H, 1, d] -> [T, B, 1, D]


@register_attention_step(SSA, A2OS2A)
def _linear_step(attn, x: Tensor, state: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """attn_neuron(LN_h(q_n S_n)), S_n = gamma S_{n-1} + k_n^T v_n; state: S [T, B, H, d, d_v]."""
    q, k, v = attn.project(x)  # [T, B, H, 1, d]
    y, state = attn.product.step(q, k, v, state)
    return _finish(attn, attn.attn_neuron(y)), state


@register_attention_step(SoftmaxAttention)
def _softmax_step(attn, x: Tensor, state: Optional[Tuple[Tensor, Tensor]]) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
    """softmax(q_n K_{<=n}^T / sqrt(d)) V_{<=n}; state: the KV cache, each [T, B, H, n, d]."""
    q, k, v = attn.project(x)
    if state is not None:
        k, v = torch.cat([state[0], k], -2), torch.cat([state[1], v], -2)
    y = F.scaled_dot_product_attention(q.flatten(0, 1), k.flatten(0, 1), v.flatten(0, 1)).unflatten(0, q.shape[:2])
    return _finish(attn, y), (k, v)


@register_attention_step(SDSA)
def _sdsa_step(attn, x: Tensor, state: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """q_n * SN(sum_{i<=n} k_i * v_i); state: the running column sum [T, B, H, 1, d]."""
    q, k, v = attn.project(x)
    kv = attn.kv_mask(k, v)
    state = kv if state is None else state + kv
    return _finish(attn, attn.q_mask(q, attn.kv_neuron(state))), state


@register_attention_step(QKChannelAttention)
def _qk_channel_step(attn, x: Tensor, state: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """SN(sum_{i<=n} q_i) * k_n; state: the running column sum of Q [T, B, H, 1, d]."""
    q, k = attn.project(x)
    state = q if state is None else state + q
    return _finish(attn, attn.mask(attn.attn_neuron(state), k)), state


@register_attention_step(QKTokenAttention)
def _per_token_step(attn, x: Tensor, state: None) -> Tuple[Tensor, None]:
    """Token attention masks each token by its own Q: no token mixing, no state."""
    return attn(x), None


def _replay_step(attn, x: Tensor, state: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """Any causal attention: cache the layer's inputs [T, B, n, D] and keep the last output position."""
    state = x if state is None else torch.cat([state, x], 2)
    return attn(state)[:, :, -1:], state


def attention_step(attn: nn.Module, x: Tensor, state: Any = None) -> Tuple[Tensor, Any]:
    """One token [T, B, 1, D] through a causal attention; returns its output and the new state."""
    own = getattr(attn, "step", None)
    if callable(own):
        return own(x, state)
    return _STEPPERS.get(type(attn), _replay_step)(attn, x, state)


# --- model --------------------------------------------------------------------------------------------
class LMBlock(nn.Module):
    """x + Attn(SN(Shift(Norm(x)))), then x + MLP(Shift(Norm(x))) on the real residual stream [T, B, N, D]
    (`Shift`: the token shift, when `token_shift`; streaming state: the attention's and the last normed
    inputs of both branches)."""

    def __init__(self, cfg: SpikingLMConfig):
        super().__init__()
        neuron = neuron_factory(cfg.neuron, **cfg.neuron_opts)
        self.norm1 = create_norm(cfg.norm, cfg.dim)
        self.neuron1 = neuron()
        self.attn = create_attention(cfg.attention, cfg.dim, cfg.num_heads, neuron=cfg.neuron, neuron_opts=cfg.neuron_opts,
                                     qkv_bias=cfg.qkv_bias, out_neuron=False, norm=cfg.norm, causal=True,
                                     **cfg.attention_opts)
        self.norm2 = create_norm(cfg.norm, cfg.dim)
        self.mlp = MembraneMLP(cfg.dim, int(cfg.dim * cfg.mlp_ratio), neuron, bias=False, norm=cfg.norm)
        self.shift1 = TokenShift(cfg.dim) if cfg.token_shift else None
        self.shift2 = TokenShift(cfg.dim) if cfg.token_shift else None
        with torch.no_grad():  # scaled residual initialisation: the branches' last norms start small
            for last in (self.attn.proj.norm, self.mlp.fc2.norm):
                last.weight.fill_(1.0 / math.sqrt(2 * cfg.depth))

    @staticmethod
    def _shift(shift: Optional[nn.Module], h: Tensor, prev: Optional[Tensor] = None) -> Tensor:
        return h if shift is None else shift(h, prev)

    def forward(self, x: Tensor) -> Tensor:  # [T, B, N, D]
        x = x + self.attn(self.neuron1(self._shift(self.shift1, self.norm1(x))))
        return x + self.mlp(self._shift(self.shift2, self.norm2(x)))

    def step(self, x: Tensor, state: Any) -> Tuple[Tensor, Any]:  # [T, B, 1, D]
        attn_state, prev1, prev2 = state if state is not None else (None, None, None)
        h1 = self.norm1(x)
        y, attn_state = attention_step(self.attn, self.neuron1(self._shift(self.shift1, h1, prev1)), attn_state)
        x = x + y
        h2 = self.norm2(x)
        return x + self.mlp(self._shift(self.shift2, h2, prev2)), (attn_state, h1, h2)


def _embedding(num: int, dim: int) -> nn.Embedding:
    """nn.Embedding with N(0, 1) weights, drawn only off the meta device: a normal draw on meta imports
    torch._dynamo (seconds), which `count_parameters` and `spikeformers models` need not pay."""
    w = torch.empty(num, dim)
    if not w.is_meta:
        nn.init.normal_(w)
    return nn.Embedding(num, dim, _weight=w)


def _check(cfg: SpikingLMConfig) -> None:
    for name in ("vocab_size", "block_size", "dim", "depth", "num_heads", "T"):
        v = getattr(cfg, name)
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"SpikingLM {name} must be a positive integer, got {v!r}")
    if cfg.encoder != "direct":
        raise ValueError(f"SpikingLM encodes real embeddings by repetition: encoder must be 'direct', got {cfg.encoder!r}")
    if cfg.norm not in TOKEN_NORMS:
        raise ValueError(f"SpikingLM norm must be one of {', '.join(TOKEN_NORMS)} (BatchNorm would mix the tokens of a "
                         f"batch, so training would not be causal), got {cfg.norm!r}")
    cls = ATTENTIONS.get(cfg.attention)
    if not getattr(cls, "supports_causal", False):
        causal = [n for n in ATTENTIONS.names() if getattr(ATTENTIONS.get(n), "supports_causal", False)]
        raise ValueError(f"SpikingLM needs a causal attention; {cfg.attention!r} has no causal form; valid: {', '.join(causal)}")


class SpikingLM(TokenModel, nn.Module):
    """`forward(ids [B, N]) -> logits [B, N, vocab]`; `step(ids [B], state) -> (logits [B, vocab], state)`."""

    def __init__(self, cfg: SpikingLMConfig):
        super().__init__()
        apply_twin(cfg)
        _check(cfg)
        self.cfg = cfg
        self.tok_emb = _embedding(cfg.vocab_size, cfg.dim)
        self.pos_emb = _embedding(cfg.block_size, cfg.dim)
        self.encoder = create_encoder(cfg.encoder, cfg.T)
        self.blocks = nn.ModuleList(LMBlock(cfg) for _ in range(cfg.depth))
        self.norm = create_norm(cfg.norm, cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)

    def _logits(self, x: Tensor) -> Tensor:
        return self.head(self.norm(x.mean(0)))  # [T, B, N, D] -> [B, N, vocab]

    def forward(self, ids: Tensor) -> Tensor:
        self._check_ids(ids, 2)
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.encoder(self.tok_emb(ids) + self.pos_emb(pos))  # [T, B, N, D]
        for blk in self.blocks:
            x = blk(x)
        return self._logits(x)

    def step(self, ids: Tensor, state: Optional[LMState] = None) -> Tuple[Tensor, LMState]:
        """Logits of the next token after `ids` (the token at position `state.pos`); inference (eval mode)."""
        self._check_ids(ids, 1)
        pos = 0 if state is None else state.pos  # an int, or a tensor when the step is replayed as a CUDA graph
        if isinstance(pos, int) and pos >= self.cfg.block_size:
            raise ValueError(f"cannot step past block_size {self.cfg.block_size}")
        layers = [None] * len(self.blocks) if state is None else state.layers
        pe = self.pos_emb.weight[pos] if isinstance(pos, int) else self.pos_emb(pos)  # a tensor index must not sync
        x = self.encoder((self.tok_emb(ids) + pe)[:, None])  # [T, B, 1, D]
        new = []
        for blk, s in zip(self.blocks, layers):
            x, s = blk.step(x, s)
            new.append(s)
        return self._logits(x)[:, 0], LMState(pos + 1, new)


def _lm(defaults: Dict[str, Any], overrides: Dict[str, Any]) -> SpikingLM:
    if overrides.get("neuron") is not None and "neuron_opts" not in overrides:
        overrides = {**overrides, "neuron_opts": {}}  # the default options belong to the default neuron
    return SpikingLM(build_config(SpikingLMConfig, defaults, overrides, "SpikingLM"))


@register_model(family="lm", note="no published counterpart; SpikeGPT-46M sizes (12 x 512)")
def spiking_lm(**kw):
    return _lm(dict(vocab_size=256, block_size=1024, dim=512, depth=12, num_heads=8), kw)


@register_model(family="lm", note="tiny causal LM for tests")
def spiking_lm_tiny(**kw):
    return _lm(dict(vocab_size=64, block_size=32, dim=32, depth=2, num_heads=2, T=2), kw)
