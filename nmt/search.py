"""Decoding over any model that exposes ``encode``, ``step`` and ``reorder`` (see nmt.model.seq2seq).

The search owns the loop; the model owns one step. Letters: B batch, S source length, K beam, V vocabulary.
PAD and BOS are never produced.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from nmt.data.tokenizer import BOS, EOS, PAD


def max_lengths(src_len: Tensor, ratio: float, extra: int = 10) -> Tensor:
    """(B,) output length caps: ``ratio * source length + extra``."""
    return (src_len.float() * ratio).long() + extra


def _no_specials(logp: Tensor) -> Tensor:
    """Forbid PAD and BOS as outputs: (N, V) -> (N, V)."""
    logp[:, PAD] = float("-inf")
    logp[:, BOS] = float("-inf")
    return logp


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
        prev = _no_specials(logp).argmax(-1)
        prev = prev.masked_fill(done, EOS)
        steps.append(prev)
        done |= (prev == EOS) | (t + 1 >= max_len)
        if bool(done.all()):
            break
    out = torch.stack(steps, dim=1).tolist() if steps else [[] for _ in range(batch)]
    return [row[: row.index(EOS)] if EOS in row else row for row in out]


@dataclass
class Hypothesis:
    """A finished translation: ``tokens`` without EOS; ``logprob`` = log p(tokens + EOS | source), or of the
    tokens alone when the length cap stopped it; ``score`` = logprob / length_penalty(len(tokens) + 1)."""

    tokens: list[int]
    logprob: float
    score: float


def length_penalty(length: int | Tensor, alpha: float) -> float | Tensor:
    """GNMT length penalty (Wu et al. 2016, eq. 14): ((5 + length) / 6) ** alpha; alpha=0 disables it."""
    return ((5 + length) / 6) ** alpha


@torch.no_grad()
def beam_search(model, src: Tensor, src_len: Tensor, max_len: Tensor, *, beam: int, alpha: float = 1.0,
                n_best: int = 1) -> list[list[Hypothesis]]:
    """Batched beam search: B sentences x K beams advance together in one (B*K, ...) state.

    At each step the 2K best continuations of each sentence are taken from top-k over K*V; those ending in
    EOS among the first K are set aside as finished, and the K best others continue. A sentence is done when
    it has K finished hypotheses or reaches its length cap; the loop ends when all are done.

    :param max_len: (B,) output caps. :param beam: K. :param alpha: length penalty exponent.
    :return: per sentence, the ``n_best`` hypotheses with the highest ``score``, best first.
    """
    b, k = src.shape[0], beam
    state = model.reorder(model.encode(src, src_len), torch.arange(b).repeat_interleave(k))
    cum = torch.full((b, k), float("-inf"))
    cum[:, 0] = 0.0  # only beam 0 is alive at the start
    tokens = torch.full((b * k, 0), BOS, dtype=torch.long)
    prev = torch.full((b * k,), BOS, dtype=torch.long)
    finished: list[list[Hypothesis]] = [[] for _ in range(b)]
    done = [False] * b
    ending_at: dict[int, list[int]] = {}  # step -> sentences whose length cap ends there
    for i, cap in enumerate(max_len.tolist()):
        ending_at.setdefault(max(cap, 1) - 1, []).append(i)
    for t in range(int(max_len.max())):
        logp, state = model.step(prev, state)
        vocab = logp.shape[-1]
        cand = (cum.view(-1, 1) + _no_specials(logp)).view(b, k * vocab)
        top, idx = cand.topk(min(2 * k, k * vocab), dim=-1)  # (B, 2K)
        src_beam, tok = idx // vocab, idx % vocab
        _collect_finished(finished, done, top, src_beam, tok, tokens, k, alpha)
        keep_score = top.masked_fill(tok == EOS, float("-inf"))
        keep_score, order = keep_score.topk(k, dim=-1)  # (B, K) best non-EOS continuations
        rows = (src_beam.gather(1, order) + torch.arange(b).unsqueeze(1) * k).view(-1)
        prev = tok.gather(1, order).view(-1)
        tokens = torch.cat([tokens.index_select(0, rows), prev.unsqueeze(1)], dim=1)
        cum = keep_score.masked_fill(torch.tensor(done).unsqueeze(1), float("-inf"))
        state = model.reorder(state, rows)
        for i in ending_at.get(t, []):  # the length cap: alive beams end here without EOS
            if not done[i]:
                for j in range(k):
                    if cum[i, j] > float("-inf"):
                        finished[i].append(_hypothesis(tokens[i * k + j].tolist(), float(cum[i, j]), alpha))
                done[i] = True
        if all(done):
            break
    return [sorted(h, key=lambda x: -x.score)[:n_best] for h in finished]


def _hypothesis(tokens: list[int], logprob: float, alpha: float) -> Hypothesis:
    """A finished hypothesis scored with the length penalty (its length counts the EOS)."""
    return Hypothesis(tokens, logprob, logprob / float(length_penalty(len(tokens) + 1, alpha)))


def _collect_finished(finished, done, top, src_beam, tok, tokens, k, alpha) -> None:
    """Set aside EOS continuations ranked among the first K of a sentence's 2K candidates."""
    eos = (tok[:, :k] == EOS) & (top[:, :k] > float("-inf"))
    for i, j in eos.nonzero().tolist():
        if done[i]:
            continue
        finished[i].append(_hypothesis(tokens[i * k + int(src_beam[i, j])].tolist(), float(top[i, j]), alpha))
        if len(finished[i]) >= k:
            done[i] = True
