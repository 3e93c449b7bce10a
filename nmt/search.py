"""Decoding over any model that exposes ``encode``, ``step`` and ``reorder`` (see nmt.model.seq2seq).

The search owns the loop; the model owns one step. Letters: B batch, S source length, V vocabulary.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nmt.data.tokenizer import BOS, EOS


def max_lengths(src_len: Tensor, ratio: float, extra: int = 10) -> Tensor:
    """(B,) output length caps: ``ratio * source length + extra``."""
    return (src_len.float() * ratio).long() + extra


@torch.no_grad()
def greedy(model, src: Tensor, src_len: Tensor, max_len: Tensor) -> list[list[int]]:
    """Pick the most probable token at every step, for a whole batch at once.

    :param src: (B, S) ids. :param src_len: (B,) lengths. :param max_len: (B,) output caps.
    :return: B lists of output ids, without BOS and EOS.
    """
    state = model.encode(src, src_len)
    batch = src.shape[0]
    prev = torch.full((batch,), BOS, dtype=torch.long, device=src.device)
    done = torch.zeros(batch, dtype=torch.bool, device=src.device)
    steps: list[Tensor] = []
    for t in range(int(max_len.max())):
        logp, state = model.step(prev, state)
        prev = logp.argmax(-1)
        prev = prev.masked_fill(done, EOS)
        steps.append(prev)
        done |= (prev == EOS) | (t + 1 >= max_len)
        if bool(done.all()):
            break
    out = torch.stack(steps, dim=1).tolist() if steps else [[] for _ in range(batch)]
    return [row[: row.index(EOS)] if EOS in row else row for row in out]
