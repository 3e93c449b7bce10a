"""Sampling (``decode=sample``): each output piece drawn from the model's distribution, reshaped by a temperature
and the top-k and nucleus (top-p, Holtzman et al. 2020) cuts; the usual way to make back-translations (Edunov et
al. 2018). The j-th sample of a sentence draws its noise from a generator of its own, seeded from ``decode.seed``,
the sentence's piece ids and j, so the same seed gives the same samples of a sentence however it is batched,
chunked or placed in the input. A draw is the Gumbel-max of the reshaped log-probabilities: exact sampling.
Letters: B batch, N = B * n sample rows, V' output columns.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import torch
from torch import Tensor

from nmt.data.tokenizer import BOS, EOS
from nmt.decoding.rows import COMPACT_AT, Columns, Hypothesis, drop_done
from nmt.model.contract import Decodable


def reshape(logp: Tensor, temperature: float, topk: int, topp: float) -> Tensor:
    """(N, V') log-probabilities -> the log-probabilities to draw from (unnormalised; -inf outside the cuts)."""
    scores = logp / temperature
    if 0 < topk < scores.shape[-1]:
        kth = scores.topk(topk, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if topp < 1.0:
        ordered, order = scores.sort(dim=-1, descending=True)
        p = ordered.softmax(-1)
        beyond = p.cumsum(-1) - p >= topp  # the likelier pieces already hold topp: outside the nucleus
        scores = scores.masked_fill(torch.zeros_like(beyond).scatter(-1, order, beyond), float("-inf"))
    return scores


def generators(src_ids: Sequence[Sequence[int]], n: int, seed: int) -> list[torch.Generator]:
    """One generator per sample row (sentence i's j-th sample at row i * n + j), seeded by content, not place."""
    out = []
    for ids in src_ids:
        key = zlib.crc32(",".join(map(str, ids)).encode())
        for j in range(n):
            out.append(torch.Generator().manual_seed((seed * 1_000_003 + key) * 1_009 + j))
    return out


@torch.no_grad()
def sample(model: Decodable, src: Tensor, src_len: Tensor, max_len: Tensor, src_ids: Sequence[Sequence[int]], *,
           n: int = 1, temperature: float = 1.0, topk: int = 0, topp: float = 1.0, seed: int = 0,
           min_len: int = 0) -> list[list[Hypothesis]]:
    """``n`` samples of each of the B sources (``src_ids``: their piece ids, which seed their generators), in the
    order drawn; each with its log-probability under the model itself (before reshaping) and that as its score."""
    b = src.shape[0]
    rows = torch.arange(b, device=src.device).repeat_interleave(n)
    state, cols = model.reorder(model.encode(src, src_len), rows), Columns(model)
    gens, caps = generators(src_ids, n, seed), max_len.repeat_interleave(n).tolist()
    out = [Hypothesis([], 0.0, 0.0) for _ in caps]
    live = list(range(len(caps)))  # the sample of each state row; -1: finished, waiting to leave the batch
    prev = torch.full((len(caps),), BOS, dtype=torch.long, device=src.device)
    for t in range(int(max(caps, default=0))):
        step = model.step(prev, state)
        logp, state = cols.mask(step.scores, t < min_len), step.state
        gumbel = torch.stack([-(-torch.rand(logp.shape[-1], generator=gens[i]).log()).log() if i >= 0
                              else torch.zeros(logp.shape[-1]) for i in live]).to(logp.device)
        choice = (reshape(logp, temperature, topk, topp) + gumbel).argmax(-1)
        picked = logp.gather(1, choice.unsqueeze(1)).squeeze(1).tolist()
        prev = cols.ids[choice]
        for row, (token, lp) in enumerate(zip(prev.tolist(), picked, strict=True)):
            i = live[row]
            if i < 0:
                continue
            out[i].logprob += lp
            if token != EOS:
                out[i].tokens.append(token)
                if t + 1 < caps[i]:
                    continue
            live[row] = -1
        if all(i < 0 for i in live):
            break
        done = sum(i < 0 for i in live)
        if done and done >= COMPACT_AT * len(live):
            keep = [row for row, i in enumerate(live) if i >= 0]
            index, prev = drop_done(keep, prev)
            state, live = model.reorder(state, index), [live[row] for row in keep]
    for h in out:
        h.score = h.logprob if math.isfinite(h.logprob) else float("-inf")
    return [out[i * n : (i + 1) * n] for i in range(b)]
