"""Greedy and beam search (and sampling, nmt.decoding.sampling) over the decoding contract
(nmt.model.contract.Decodable: models and ensembles), and :func:`decode_all`, which sorts sources by length and
decodes them in batches of a token budget. Validation, ``nmt translate``, ``nmt evaluate``, serve and the Python
API all decode through :func:`decode_all`.

The search owns the loop; the model owns one step. Finished sentences leave the batch together, once
``COMPACT_AT`` of it has finished (until then their rows are still computed, and their output ignored). PAD and
BOS are never produced. A step scores V' output columns; the model's ``columns`` turn the chosen ones into piece
ids. Letters: B batch, S source length, K beam, V' output columns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from nmt.choices import DecodeMethod
from nmt.config import DecodeConfig
from nmt.data.batching import collate, token_batches
from nmt.data.tokenizer import BOS, EOS, PAD
from nmt.decoding.constrained import constrained_beam_search
from nmt.decoding.rows import COMPACT_AT, Columns, Finished, Hypothesis, Steering, drop_done
from nmt.decoding.sampling import sample
from nmt.decoding.terms import Term
from nmt.errors import NMTError
from nmt.model.contract import Decodable


def max_lengths(src_len: Tensor, ratio: float, extra: int = 10) -> Tensor:
    """(B,) output length caps: ``ratio * source length + extra``."""
    return (src_len.float() * ratio).long() + extra


@torch.no_grad()
def greedy(model: Decodable, src: Tensor, src_len: Tensor, max_len: Tensor, min_len: int = 0,
           prefixes: Sequence[Sequence[int]] | None = None, no_repeat_ngram: int = 0) -> list[Hypothesis]:
    """The most probable token at every step, for a whole batch at once.

    A finished sentence's row stays in the batch (its output ignored) until at least ``COMPACT_AT`` of the rows
    are finished; then they all leave together. Selecting the state's rows copies the source-side fields, about
    as much memory traffic as a step's products, so it is done once for many sentences, not once for each.

    :param src: (B, S) ids. :param src_len: (B,) lengths. :param max_len: (B,) output caps.
    :param min_len: no EOS before this many output tokens. :param prefixes: the start each output is forced to
        take (target piece ids; rows.Prefixes), one per sentence. :param no_repeat_ngram: no n-gram twice (0: any).
    :return: one hypothesis per sentence (scores NaN: the argmax needs no softmax).
    """
    state = model.encode(src, src_len)
    steer = Steering(Columns(model), min_len, prefixes, no_repeat_ngram, src.device)
    caps = max_len.tolist()
    out = [Hypothesis([]) for _ in caps]
    rows = list(range(len(caps)))  # the sentence of each state row; -1: finished, waiting to leave the batch
    live = len(rows)
    prev = torch.full((len(caps),), BOS, dtype=torch.long, device=src.device)
    for t in range(int(max(caps, default=0))):
        scores, state, _ = model.step(prev, state, normalize=False)  # the argmax needs no softmax
        scores = steer(scores, t, lambda rows=rows: torch.tensor(rows, device=src.device).clamp(min=0),
                       lambda rows=rows: [out[i].tokens if i >= 0 else [] for i in rows])
        prev = steer.cols.ids[scores.argmax(-1)]
        for row, token in enumerate(prev.tolist()):
            i = rows[row]
            if i < 0:
                continue
            if token != EOS:
                out[i].tokens.append(token)
                if t + 1 < caps[i]:
                    continue
            rows[row], live = -1, live - 1
        if not live:
            break
        if live < len(rows) and len(rows) - live >= COMPACT_AT * len(rows):
            keep = [row for row, i in enumerate(rows) if i >= 0]
            index, prev = drop_done(keep, prev)
            state = model.reorder(state, index)
            rows = [rows[row] for row in keep]
    return out


@dataclass
class _Coverage:
    """The coverage penalty of Wu et al. (2016, eq. 14): beta * sum_j log(min(sum_i alpha_ij, 1)) over a
    hypothesis' real source pieces j, added to its score when it finishes. None without attention or beta."""

    beta: float
    mask: Tensor  # (B, S) true on real source pieces
    beam: int
    total: Tensor | None = None  # (n*K, S) each beam's attention summed over its steps

    def add(self, attention: Tensor | None, alive: list[int]) -> Tensor | None:
        """Count a step's attention (n*K, S); the penalty (n*K,) of each beam as it stands."""
        if not self.beta or attention is None:
            return None
        self.total = attention if self.total is None else self.total + attention
        return self.penalty(alive)

    def penalty(self, alive: list[int]) -> Tensor | None:
        if self.total is None:
            return None
        real = self.mask[torch.tensor(alive, device=self.mask.device)].repeat_interleave(self.beam, 0)
        return self.beta * (self.total.clamp(1e-10, 1.0).log() * real).sum(-1)


@torch.no_grad()
def beam_search(model: Decodable, src: Tensor, src_len: Tensor, max_len: Tensor, *, beam: int, alpha: float = 1.0,
                n_best: int = 1, min_len: int = 0, prefixes: Sequence[Sequence[int]] | None = None,
                no_repeat_ngram: int = 0, coverage: float = 0.0) -> list[list[Hypothesis]]:
    """Batched beam search: B sentences x K beams advance together in one (B*K, ...) state.

    At each step the 2K best continuations of each sentence are taken from top-k over K*V; those ending in EOS
    among the first K are finished, the K best others continue. K finished or the cap end a sentence (see greedy).

    :param max_len: (B,) caps. :param beam: K. :param alpha: length penalty exponent. :param min_len: no EOS before.
    :param prefixes: the start each sentence's hypotheses are forced to take; ``no_repeat_ngram``: see greedy.
    :param coverage: beta of the coverage penalty (:class:`_Coverage`; attention models); 0: none.
    :return: per sentence, the ``n_best`` hypotheses with the highest ``score``, best first.
    """
    b, k, dev = src.shape[0], beam, src.device
    state = model.reorder(model.encode(src, src_len), torch.arange(b, device=dev).repeat_interleave(k))
    fin, cols = Finished(k, alpha, max_len.tolist(), [[] for _ in range(b)], [False] * b), Columns(model)
    steer, cover = Steering(cols, min_len, prefixes, no_repeat_ngram, dev), _Coverage(coverage, src != PAD, k)
    alive = list(range(b))  # the sentences in the batch, in state order (n of them; some may be done)
    cum = torch.full((b, k), float("-inf"), device=dev)  # (n, K) log-probabilities of the live beams
    cum[:, 0] = 0.0  # only beam 0 is alive at the start
    tokens, prev = torch.empty((b * k, 0), dtype=torch.long, device=dev), torch.full((b * k,), BOS, device=dev)
    for t in range(int(max(fin.caps, default=0))):
        n = len(alive)
        logp, state, attention = model.step(prev, state)
        vocab = logp.shape[-1]
        logp = steer(logp, t, lambda alive=alive: torch.tensor(alive, device=dev).repeat_interleave(k), tokens.tolist)
        cand = (cum.view(-1, 1) + logp).view(n, k * vocab)
        top, idx = cand.topk(min(2 * k, k * vocab), dim=-1)
        src_beam, tok = idx // vocab, cols.ids[idx % vocab]  # (n, 2K)
        fin.take_eos(alive, top, src_beam, tok, tokens, cover.add(attention, alive))
        cum, order = top.masked_fill(tok == EOS, float("-inf")).topk(k, dim=-1)  # (n, K) best non-EOS
        rows = src_beam.gather(1, order) + torch.arange(n, device=dev).unsqueeze(1) * k  # (n, K)
        prev = tok.gather(1, order)  # (n, K)
        tokens = torch.cat([tokens.index_select(0, rows.view(-1)), prev.view(-1, 1)], dim=1)
        if cover.total is not None:
            cover.total = cover.total.index_select(0, rows.view(-1))
        fin.take_capped(alive, t, cum, tokens, cover.penalty(alive))
        keep = [pos for pos, i in enumerate(alive) if not fin.done[i]]
        if not keep:
            break
        if len(keep) < n and n - len(keep) >= COMPACT_AT * n:  # done sentences leave together (see greedy)
            _, rows, prev, cum, tokens = drop_done(keep, rows, prev, cum, tokens.view(n, k, -1))
            tokens = tokens.view(len(keep) * k, -1)
            if cover.total is not None:
                cover.total = drop_done(keep, cover.total.view(n, k, -1))[1].view(len(keep) * k, -1)
            alive = [alive[pos] for pos in keep]
        state = model.reorder(state, rows.reshape(-1), same_sources=len(alive) == n)  # none left: beams swap
        prev = prev.reshape(-1)
    return [sorted(h, key=lambda x: -x.score)[:n_best] for h in fin.hyps]


def search(model: Decodable, src_ids: list[list[int]], dc: DecodeConfig,
           prefixes: Sequence[Sequence[int]] | None = None,
           terms: Sequence[Sequence[Term]] | None = None, glue: Sequence[int] = ()) -> list[list[Hypothesis]]:
    """Decode one batch of non-empty source id lists as ``dc`` says: per source, its hypotheses, best first
    (greedy: one; beam: ``dc.n_best``), each starting with its prefix (target piece ids) when given, or holding
    its ``terms`` (nmt.decoding.constrained; sources without any are searched as if none had them)."""
    if terms is not None and any(terms):
        return _constrained(model, src_ids, dc, prefixes, terms, glue)
    batch = collate(src_ids, [[] for _ in src_ids], range(len(src_ids))).to(model.device)
    caps = max_lengths(batch.src_len, dc.max_len_ratio, dc.max_len_extra)
    if prefixes and any(prefixes):  # room for the whole prefix and a piece after it
        caps = torch.maximum(caps, torch.tensor([len(p) + 1 for p in prefixes], device=caps.device))
        if dc.method == DecodeMethod.sample:
            raise NMTError("a target prefix works with greedy and beam search, not with decode=sample")
    else:
        prefixes = None
    if dc.method == DecodeMethod.sample:
        return sample(model, batch.src, batch.src_len, caps, src_ids, n=dc.n_best, temperature=dc.temperature,
                      topk=dc.topk, topp=dc.topp, seed=dc.seed, min_len=dc.min_len)
    if dc.method == DecodeMethod.beam:
        return beam_search(model, batch.src, batch.src_len, caps, beam=dc.beam, alpha=dc.alpha, n_best=dc.n_best,
                           min_len=dc.min_len, prefixes=prefixes, no_repeat_ngram=dc.no_repeat_ngram,
                           coverage=dc.coverage)
    return [[h] for h in greedy(model, batch.src, batch.src_len, caps, dc.min_len, prefixes, dc.no_repeat_ngram)]


def _constrained(model: Decodable, src_ids: list[list[int]], dc: DecodeConfig,
                 prefixes: Sequence[Sequence[int]] | None, terms: Sequence[Sequence[Term]],
                 glue: Sequence[int]) -> list[list[Hypothesis]]:
    """Sources with terms by constrained beam search, the others by plain search, each in its own batch."""
    if dc.method != DecodeMethod.beam:
        raise NMTError("constraints and glossaries need beam search (decode=beam5), not decode="
                       f"{dc.method.value}")
    if prefixes and any(prefixes) or dc.coverage:
        raise NMTError("constraints and glossaries do not combine with a target prefix or decode.coverage")
    out: list[list[Hypothesis]] = [[] for _ in src_ids]
    free = [i for i, ts in enumerate(terms) if not ts]
    if free:
        for i, hyps in zip(free, search(model, [src_ids[i] for i in free], dc), strict=True):
            out[i] = hyps
    held = [i for i, ts in enumerate(terms) if ts]
    batch = collate([src_ids[i] for i in held], [[] for _ in held], range(len(held))).to(model.device)
    caps = max_lengths(batch.src_len, dc.max_len_ratio, dc.max_len_extra)
    need = torch.tensor([sum(len(t.pieces) * t.times for t in terms[i]) + 1 for i in held], device=caps.device)
    hyps = constrained_beam_search(model, batch.src, batch.src_len, torch.maximum(caps, need),
                                   [terms[i] for i in held], beam=dc.beam, alpha=dc.alpha, n_best=dc.n_best,
                                   min_len=dc.min_len, no_repeat_ngram=dc.no_repeat_ngram, glue=glue)
    for i, h in zip(held, hyps, strict=True):
        out[i] = h
    return out


@torch.no_grad()
def decode_all(model: Decodable, ids: Sequence[Sequence[int]], dc: DecodeConfig,
               on_batch: Callable[[int, int], None] | None = None,
               prefixes: Sequence[Sequence[int]] | None = None,
               terms: Sequence[Sequence[Term]] | None = None, glue: Sequence[int] = ()) -> list[list[Hypothesis]]:
    """Hypotheses (best first) for each source id list, in input order; an empty source gets none. ``prefixes``:
    one forced output start (target piece ids, maybe empty) per source; ``terms``: the phrases each output must
    hold (nmt.decoding.terms.Term; constrained beam search), ``glue`` the pieces that may not follow one.

    Sources are sorted by length and batched by ``dc.batch_tokens``, divided by the rows each source takes (the
    beam, or the samples); ``on_batch(sentences, source_pieces)`` is called after each batch (a progress bar).
    """
    out: list[list[Hypothesis]] = [[] for _ in ids]
    todo = [i for i, x in enumerate(ids) if len(x)]
    lens = [len(ids[i]) for i in todo]
    per_source = {DecodeMethod.beam: dc.beam, DecodeMethod.sample: dc.n_best}.get(dc.method, 1)
    budget = max(dc.batch_tokens // per_source, 1)
    for group in token_batches(lens, lens, budget, shuffle=False):
        rows = [todo[j] for j in group]
        starts = [list(prefixes[i]) for i in rows] if prefixes else None
        held = [terms[i] for i in rows] if terms else None
        for i, hyps in zip(rows, search(model, [list(ids[i]) for i in rows], dc, starts, held, glue),
                            strict=True):
            out[i] = hyps
        if on_batch:
            on_batch(len(rows), sum(lens[j] for j in group))
    return out


def decode_best(model: Decodable, ids: Sequence[Sequence[int]], dc: DecodeConfig,
                on_batch: Callable[[int, int], None] | None = None,
                prefixes: Sequence[Sequence[int]] | None = None) -> list[list[int]]:
    """The best output ids for each source id list, in input order (empty for an empty source)."""
    return [h[0].tokens if h else [] for h in decode_all(model, ids, dc, on_batch, prefixes)]
