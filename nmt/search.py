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


def _no_specials(scores: Tensor) -> Tensor:
    """Forbid PAD and BOS as outputs: (N, V) log-probabilities or logits -> the same, in place."""
    scores[:, PAD] = float("-inf")
    scores[:, BOS] = float("-inf")
    return scores


@torch.no_grad()
def greedy(model, src: Tensor, src_len: Tensor, max_len: Tensor) -> list[list[int]]:
    """Pick the most probable token at every step, for a whole batch at once.

    A sentence leaves the batch when it ends (EOS or its cap), so the steps after that cost nothing for it.

    :param src: (B, S) ids. :param src_len: (B,) lengths. :param max_len: (B,) output caps.
    :return: B lists of output ids, without BOS and EOS.
    """
    state = model.encode(src, src_len)
    batch = src.shape[0]
    caps = max_len.tolist()
    out: list[list[int]] = [[] for _ in range(batch)]
    alive = list(range(batch))  # sentences still decoded, in state row order
    prev = torch.full((batch,), BOS, dtype=torch.long, device=src.device)
    step = getattr(model, "step_logits", model.step)  # the argmax needs no softmax
    for t in range(int(max(caps, default=0))):
        scores, state = step(prev, state)
        prev = _no_specials(scores).argmax(-1)
        keep = []
        for row, (i, token) in enumerate(zip(alive, prev.tolist(), strict=True)):
            if token != EOS:
                out[i].append(token)
                if t + 1 < caps[i]:
                    keep.append(row)
        if not keep:
            break
        if len(keep) < len(alive):
            rows = torch.tensor(keep, device=src.device)
            state, prev = model.reorder(state, rows), prev.index_select(0, rows)
            alive = [alive[row] for row in keep]
    return out


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
    it has K finished hypotheses or reaches its length cap; then it leaves the batch (its rows are dropped
    from the state), and the loop ends when none is left.

    :param max_len: (B,) output caps. :param beam: K. :param alpha: length penalty exponent.
    :return: per sentence, the ``n_best`` hypotheses with the highest ``score``, best first.
    """
    b, k, dev = src.shape[0], beam, src.device
    state = model.reorder(model.encode(src, src_len), torch.arange(b, device=dev).repeat_interleave(k))
    caps = max_len.tolist()
    alive = list(range(b))  # sentences still searched, in state order (n = len(alive) of them)
    cum = torch.full((b, k), float("-inf"), device=dev)  # (n, K) log-probabilities of the live beams
    cum[:, 0] = 0.0  # only beam 0 is alive at the start
    tokens = torch.full((b * k, 0), BOS, dtype=torch.long, device=dev)  # (n*K, t) their tokens
    prev = torch.full((b * k,), BOS, dtype=torch.long, device=dev)
    finished: list[list[Hypothesis]] = [[] for _ in range(b)]
    done = [False] * b
    for t in range(int(max(caps, default=0))):
        n = len(alive)
        logp, state = model.step(prev, state)
        vocab = logp.shape[-1]
        cand = (cum.view(-1, 1) + _no_specials(logp)).view(n, k * vocab)
        top, idx = cand.topk(min(2 * k, k * vocab), dim=-1)  # (n, 2K)
        src_beam, tok = idx // vocab, idx % vocab
        _collect_finished(finished, done, alive, top, src_beam, tok, tokens, k, alpha)
        keep_score = top.masked_fill(tok == EOS, float("-inf"))
        cum, order = keep_score.topk(k, dim=-1)  # (n, K) best non-EOS continuations
        rows = src_beam.gather(1, order) + torch.arange(n, device=dev).unsqueeze(1) * k  # (n, K)
        prev = tok.gather(1, order)  # (n, K)
        tokens = torch.cat([tokens.index_select(0, rows.view(-1)), prev.view(-1, 1)], dim=1)
        for pos, i in enumerate(alive):  # the length cap: alive beams end here without EOS
            if not done[i] and t + 1 >= max(caps[i], 1):
                for j, score in enumerate(cum[pos].tolist()):
                    if score > float("-inf"):
                        finished[i].append(_hypothesis(tokens[pos * k + j].tolist(), score, alpha))
                done[i] = True
        keep = [pos for pos, i in enumerate(alive) if not done[i]]
        if not keep:
            break
        if len(keep) < n:  # drop the sentences that are done
            sel = torch.tensor(keep, device=dev)
            rows, prev, cum = rows.index_select(0, sel), prev.index_select(0, sel), cum.index_select(0, sel)
            tokens = tokens.view(n, k, -1).index_select(0, sel).view(len(keep) * k, -1)
            alive = [alive[pos] for pos in keep]
        state = model.reorder(state, rows.view(-1))
        prev = prev.view(-1)
    return [sorted(h, key=lambda x: -x.score)[:n_best] for h in finished]


def _hypothesis(tokens: list[int], logprob: float, alpha: float) -> Hypothesis:
    """A finished hypothesis scored with the length penalty (its length counts the EOS)."""
    return Hypothesis(tokens, logprob, logprob / float(length_penalty(len(tokens) + 1, alpha)))


def _collect_finished(finished, done, alive, top, src_beam, tok, tokens, k, alpha) -> None:
    """Set aside EOS continuations ranked among the first K of a sentence's 2K candidates (row ``pos`` of the
    live batch is sentence ``alive[pos]``)."""
    eos = (tok[:, :k] == EOS) & (top[:, :k] > float("-inf"))
    for pos, j in eos.nonzero().tolist():
        i = alive[pos]
        if done[i]:
            continue
        finished[i].append(_hypothesis(tokens[pos * k + int(src_beam[pos, j])].tolist(), float(top[pos, j]), alpha))
        if len(finished[i]) >= k:
            done[i] = True
