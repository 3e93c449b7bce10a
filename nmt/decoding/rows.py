"""What every search shares: the :class:`Hypothesis` it returns, the finished ones (:class:`Finished`), the
model's output columns (:class:`Columns`) and how finished rows leave the batch (:func:`drop_done`, ``COMPACT_AT``).
Letters: N rows, V' output columns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from nmt.data.tokenizer import BOS, EOS, PAD, UNK
from nmt.model.contract import Decodable


@dataclass
class Hypothesis:
    """A translation: ``tokens`` without BOS and EOS; ``logprob`` = log p(tokens + EOS | source), or of the tokens
    alone when the length cap stopped it; ``score`` = logprob / length_penalty(len(tokens) + 1), which ranks
    beam hypotheses. Greedy search takes the argmax of the logits and computes neither (both NaN)."""

    tokens: list[int]
    logprob: float = math.nan
    score: float = math.nan
    missing: list[str] = field(default_factory=list)  # constrained search: the phrases it could not place


def length_penalty(length: int | Tensor, alpha: float) -> float | Tensor:
    """GNMT length penalty (Wu et al. 2016, eq. 14): ((5 + length) / 6) ** alpha; alpha=0 disables it."""
    return ((5 + length) / 6) ** alpha


COMPACT_AT = 0.25  # the share of finished sentences at which they leave the batch (greedy and beam search)


class Columns:
    """A model's output columns (nmt.model.contract): the piece id of each, and which ones search may not pick."""

    def __init__(self, model: Decodable) -> None:
        self.ids = model.columns  # (V',)
        self.never = ((self.ids == PAD) | (self.ids == BOS)).nonzero().squeeze(1)  # PAD and BOS are never output
        self.eos = (self.ids == EOS).nonzero().squeeze(1)

    def mask(self, scores: Tensor, eos_too: bool = False) -> Tensor:
        """(N, V') log-probabilities or logits with PAD and BOS (and EOS while the output is shorter than the
        minimum length) at -inf, in place."""
        scores.index_fill_(1, self.never, float("-inf"))
        if eos_too:
            scores.index_fill_(1, self.eos, float("-inf"))
        return scores


def drop_done(keep: list[int], *tensors: Tensor) -> tuple[Tensor, ...]:
    """How finished sentences leave the batch: the index of the ``keep`` rows, and the given batch-first tensors
    with only those rows (the caller reorders the model state with the index)."""
    index = torch.tensor(keep, device=tensors[0].device)
    return (index, *(t.index_select(0, index) for t in tensors))


class Prefixes:
    """Forced starts of the outputs (a target prefix per sentence, e.g. what a translator has typed): while a
    sentence's output is shorter than its prefix, only the prefix's next piece may be chosen. A piece the model
    cannot emit (outside its output columns) is forced as UNK."""

    def __init__(self, prefixes: Sequence[Sequence[int]], cols: Columns, device: torch.device) -> None:
        self.lens = [len(p) for p in prefixes]
        self.longest = max(self.lens, default=0)
        column = torch.full((int(cols.ids.max()) + 1,), int((cols.ids == UNK).nonzero()[0]), dtype=torch.long)
        column[cols.ids.cpu()] = torch.arange(len(cols.ids))
        table = torch.full((len(prefixes), max(self.longest, 1)), -1, dtype=torch.long)
        for i, p in enumerate(prefixes):
            if p:
                table[i, : len(p)] = column[torch.tensor(p).clamp(max=len(column) - 1)]
        self.table = table.to(device)  # (B, P) the column forced at each step; -1: none

    def force(self, scores: Tensor, t: int, sentence: Tensor) -> Tensor:
        """(N, V') scores with every column but the forced one at -inf on rows whose sentence (``sentence``:
        (N,) the sentence of each row) is still inside its prefix at step t; in place."""
        if t >= self.longest:
            return scores
        col = self.table[sentence, t]  # (N,)
        on = col >= 0
        if bool(on.any()):
            kept = scores[on].gather(1, col[on].unsqueeze(1))
            scores[on] = float("-inf")
            scores[on.nonzero().squeeze(1), col[on]] = kept.squeeze(1)
        return scores


def repeat_bans(history: Sequence[int], n: int) -> set[int]:
    """The pieces that would complete an n-gram already in ``history`` (``decode.no_repeat_ngram=n``)."""
    if n <= 0 or len(history) < n - 1:
        return set()
    tail = tuple(history[len(history) - n + 1 :]) if n > 1 else ()
    return {history[i + n - 1] for i in range(len(history) - n + 1) if tuple(history[i : i + n - 1]) == tail}


class Steering:
    """What a search step applies to the model's scores besides them: PAD and BOS never, EOS not before
    ``min_len``, each sentence's forced prefix, and no repeated n-gram (``no_repeat_ngram``; 0: allowed)."""

    def __init__(self, cols: Columns, min_len: int, prefixes: Sequence[Sequence[int]] | None, no_repeat: int,
                 device: torch.device) -> None:
        self.cols, self.min_len, self.no_repeat = cols, min_len, no_repeat
        self.forced = Prefixes(prefixes, cols, device) if prefixes else None
        self.column = torch.full((int(cols.ids.max()) + 1,), -1, dtype=torch.long)
        self.column[cols.ids.cpu()] = torch.arange(len(cols.ids))

    def __call__(self, scores: Tensor, t: int, sentences: Callable[[], Tensor],
                 histories: Callable[[], list[list[int]]]) -> Tensor:
        """(N, V') scores at step t, in place; ``sentences()``: the sentence of each row (N,), ``histories()``:
        each row's output so far (both asked for only when needed)."""
        scores = self.cols.mask(scores, t < self.min_len)
        if self.forced is not None and t < self.forced.longest:
            scores = self.forced.force(scores, t, sentences())
        if self.no_repeat and t >= self.no_repeat - 1:
            for row, history in enumerate(histories()):
                bans = [c for c in (self.column[b] for b in repeat_bans(history, self.no_repeat)) if c >= 0]
                if bans:
                    scores[row, torch.stack(bans)] = float("-inf")
        return scores


@dataclass
class Finished:
    """Beam search's finished hypotheses: per sentence, up to K of them, and whether the sentence is done."""

    beam: int
    alpha: float
    caps: list[int]
    hyps: list[list[Hypothesis]]
    done: list[bool]

    def add(self, i: int, tokens: list[int], logprob: float, bonus: float = 0.0, missing: Sequence[str] = ()) -> None:
        """A finished hypothesis of sentence i, scored with the length penalty (its length counts the EOS), plus
        ``bonus`` (the coverage penalty); ``missing``: the constraints it lacks."""
        lp = float(length_penalty(len(tokens) + 1, self.alpha))
        self.hyps[i].append(Hypothesis(tokens, logprob, logprob / lp + bonus, list(missing)))

    def take_eos(self, alive: list[int], top: Tensor, src_beam: Tensor, tok: Tensor, tokens: Tensor,
                 bonus: Tensor | None) -> None:
        """Set aside the EOS continuations ranked among the first K of each sentence's 2K candidates ``top``
        (n, 2K), from beams ``src_beam`` (n, 2K) with tokens ``tok`` (n, 2K); ``tokens`` (n*K, t) so far and
        ``bonus`` (n*K,) of each beam (or None)."""
        eos = (tok[:, : self.beam] == EOS) & (top[:, : self.beam] > float("-inf"))
        for pos, j in eos.nonzero().tolist():
            i, row = alive[pos], pos * self.beam + int(src_beam[pos, j])
            if not self.done[i]:
                self.add(i, tokens[row].tolist(), float(top[pos, j]), 0.0 if bonus is None else float(bonus[row]))
                self.done[i] = len(self.hyps[i]) >= self.beam

    def take_capped(self, alive: list[int], t: int, cum: Tensor, tokens: Tensor, bonus: Tensor | None) -> None:
        """Sentences at their length cap after step t end here: their live beams (``cum`` (n, K) log-probs,
        ``tokens`` (n*K, t+1), ``bonus`` (n*K,) or None) are finished without EOS."""
        for pos, i in enumerate(alive):
            if not self.done[i] and t + 1 >= max(self.caps[i], 1):
                for j, logprob in enumerate(cum[pos].tolist()):
                    if logprob > float("-inf"):
                        row = pos * self.beam + j
                        self.add(i, tokens[row].tolist(), logprob, 0.0 if bonus is None else float(bonus[row]))
                self.done[i] = True
