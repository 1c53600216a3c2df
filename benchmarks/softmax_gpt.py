"""The plain softmax GPT a user would pick instead of a spiking LM, trained by our own engine so that its
bits/byte sit beside the spiking models' with the same data, schedule, precision and evaluation.

nanoGPT's model (Radford et al., 2019; Karpathy's nanoGPT): learned token and position embeddings, pre-norm
blocks of causal softmax attention and a GELU MLP of 4 x width, no biases, a final LayerNorm and a head
tied to the token embedding. It is registered here, for this process only, as model `softmax_gpt`
(family "lm"), then the ordinary command line runs:

    python benchmarks/softmax_gpt.py configs/spiking_lm_gcide.yaml schedule.epochs=40 run.name=gpt
    python benchmarks/softmax_gpt.py configs/spiking_lm_tiny_gcide.yaml       # the CPU sizes

The recipe's `neuron` and `T` do not apply to a network without neurons: the command sets them to null (the
run's config.yaml shows it); width, depth, heads and block size are the recipe's. A run folder it writes loads again only in a
process that has imported this file.
"""
from __future__ import annotations

import math
import sys

import torch
import torch.nn.functional as F
from torch import nn

from spikeformers.cli import main
from spikeformers.models import register_model


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.heads = num_heads
        self.ln1, self.ln2 = nn.LayerNorm(dim, bias=False), nn.LayerNorm(dim, bias=False)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim, bias=False), nn.Linear(dim, dim, bias=False)
        self.fc, self.out = nn.Linear(dim, 4 * dim, bias=False), nn.Linear(4 * dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(B, N, D))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class SoftmaxGPT(nn.Module):
    def __init__(self, vocab_size: int, block_size: int, dim: int, depth: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.tok, self.pos = nn.Embedding(vocab_size, dim), nn.Embedding(block_size, dim)
        self.blocks = nn.ModuleList(Block(dim, num_heads) for _ in range(depth))
        self.ln = nn.LayerNorm(dim, bias=False)
        self.head = nn.Linear(dim, vocab_size, bias=False)
        self.head.weight = self.tok.weight  # tied, as in GPT-2
        for name, p in self.named_parameters():  # GPT-2 initialisation, residual projections scaled by depth
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * depth) if name.endswith(("proj.weight", "out.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


@register_model(family="lm", note="benchmarks/softmax_gpt.py: a plain softmax GPT, the baseline of the LM table")
def softmax_gpt(vocab_size: int = 256, block_size: int = 256, dim: int = 384, depth: int = 6, num_heads: int = 6,
                neuron=None, T=None):
    # model options from the command line arrive as text (the zoo's builders read them by their fields' types)
    return SoftmaxGPT(*(int(v) for v in (vocab_size, block_size, dim, depth, num_heads)))


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit(__doc__)
    sys.exit(main(["train", args[0], "model.name=softmax_gpt", "model.neuron=null", "model.T=null", *args[1:]]))
