"""Lexically constrained beam search by dynamic beam allocation (Post & Vilar 2018): every target phrase a
sentence is given (nmt.decoding.terms.Term) must appear in its translation, as often as asked, no more.

At each step a sentence's candidates are the usual 2K best continuations, plus, for every live beam, its best
next piece and the next piece of each phrase it still owes. They are grouped into banks by how many phrase
pieces they have placed, and the K beams are dealt out across the banks, the most advanced first, so that
hypotheses on their way through a phrase are not crowded out by freer ones. EOS is allowed only once every
phrase is in place; a sentence whose cap comes first keeps its best hypothesis and names what is missing.
Phrase progress is tracked per beam with KMP automata, so phrases may appear anywhere, also by themselves.
Letters: B batch, K beam, V' output columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from nmt.data.tokenizer import BOS
from nmt.decoding.rows import COMPACT_AT, Columns, Finished, Hypothesis, Steering, drop_done
from nmt.decoding.terms import Term
from nmt.model.contract import Decodable

State = tuple[tuple[int, ...], tuple[int, ...], bool]  # per phrase: times placed, pieces of the next matched; and
# whether the last piece completed a phrase


class _Phrase:
    """One phrase as output columns, with the KMP failure links of its piece sequence."""

    def __init__(self, term: Term, column: Tensor) -> None:
        self.text, self.times = term.text, term.times
        self.cols = [int(column[p]) if p < len(column) else -1 for p in term.pieces]
        self.fail = [0, 0]
        for i in range(1, len(self.cols)):
            q = self.fail[i]
            while q and self.cols[i] != self.cols[q]:
                q = self.fail[q]
            self.fail.append(q + 1 if self.cols[i] == self.cols[q] else 0)

    def step(self, q: int, col: int) -> tuple[int, int]:
        """From ``q`` matched pieces, after piece ``col``: (matched pieces, 1 if the phrase was completed)."""
        while q and self.cols[q] != col:
            q = self.fail[q]
        if self.cols[q] == col:
            q += 1
        return (self.fail[q], 1) if q == len(self.cols) else (q, 0)


class Tracker:
    """Each sentence's phrases, and what a beam's state (:data:`State`) owes, has placed and may do next.
    Phrases with a piece the model cannot emit are given up at the start (``lost``)."""

    def __init__(self, terms: Sequence[Sequence[Term]], cols: Columns, glue: Sequence[int] = ()) -> None:
        column = torch.full((int(cols.ids.max()) + 1,), -1, dtype=torch.long)
        column[cols.ids.cpu()] = torch.arange(len(cols.ids))
        self.glue = [c for c in (int(column[g]) for g in glue if g < len(column)) if c >= 0]
        phrases = [[_Phrase(t, column) for t in ts] for ts in terms]
        self.phrases = [[p for p in ps if min(p.cols) >= 0] for ps in phrases]
        self.lost = [[p.text for p in ps if min(p.cols) < 0] for ps in phrases]
        self.eos = int(cols.eos[0])

    def start(self, i: int) -> State:
        zeros = tuple(0 for _ in self.phrases[i])
        return zeros, zeros, False

    def advance(self, i: int, state: State, col: int) -> State:
        steps = [p.step(q, col) for p, q in zip(self.phrases[i], state[1], strict=True)]
        return (tuple(n + d for n, (_, d) in zip(state[0], steps, strict=True)), tuple(q for q, _ in steps),
                any(d for _, d in steps))

    def placed(self, i: int, state: State) -> int:
        """Phrase pieces in place (the bank): whole phrases owed and placed, and the matched start of the next."""
        return sum(len(p.cols) * min(n, p.times) + (q if n < p.times else 0)
                   for p, n, q in zip(self.phrases[i], *state[:2], strict=True))

    def owed(self, i: int, state: State) -> list[int]:
        """The columns that take a phrase still owed one piece further."""
        return [p.cols[q] for p, n, q in zip(self.phrases[i], *state[:2], strict=True) if n < p.times]

    def banned(self, i: int, state: State) -> list[int]:
        """EOS while a phrase is owed; the piece that would place a phrase once too often; right after a
        phrase, the pieces that would glue a word onto its last one (``glue``)."""
        out = [p.cols[q] for p, n, q in zip(self.phrases[i], *state[:2], strict=True)
               if n >= p.times and q == len(p.cols) - 1] + (self.glue if state[2] else [])
        return out + [self.eos] if any(n < p.times for p, n in zip(self.phrases[i], state[0], strict=True)) else out

    def missing(self, i: int, state: State) -> list[str]:
        return self.lost[i] + [p.text for p, n in zip(self.phrases[i], state[0], strict=True) if n < p.times]


def _ban(scores: Tensor, track: Tracker, alive: list[int], states: list[State], k: int) -> None:
    """(n*K, V') scores with each beam's banned columns at -inf, in place."""
    rows, cols = [], []
    for row, state in enumerate(states):
        for col in track.banned(alive[row // k], state):
            rows.append(row)
            cols.append(col)
    if rows:
        scores[torch.tensor(rows), torch.tensor(cols)] = float("-inf")


def _candidates(cand: Tensor, track: Tracker, alive: list[int], states: list[State],
                k: int) -> list[dict[tuple[int, int], float]]:
    """Per sentence in the batch, its candidates {(beam row, column): cumulative log-probability}."""
    n, vocab = len(alive), cand.shape[-1]
    top, idx = cand.view(n, k * vocab).topk(min(2 * k, k * vocab), dim=-1)
    best = cand.argmax(-1).tolist()
    rows, cols = [], []
    for row, state in enumerate(states):
        for col in {best[row], *track.owed(alive[row // k], state)}:
            rows.append(row)
            cols.append(col)
    extra = cand[torch.tensor(rows), torch.tensor(cols)].tolist()
    out: list[dict[tuple[int, int], float]] = [{} for _ in alive]
    for pos, (scores, ids) in enumerate(zip(top.tolist(), idx.tolist(), strict=True)):
        out[pos].update(((pos * k + j // vocab, j % vocab), s) for s, j in zip(scores, ids, strict=True))
    for row, col, s in zip(rows, cols, extra, strict=True):
        out[row // k][(row, col)] = s
    return [{key: s for key, s in c.items() if s > float("-inf")} for c in out]


def _allocate(cands: list[tuple[float, int, int, State, int]], k: int) -> list[tuple[float, int, int, State, int]]:
    """K of (score, row, column, state, bank): dealt round-robin over the banks, most placed first, best first
    within a bank; a bank with too few candidates leaves its slots to the others."""
    banks: dict[int, list] = {}
    for c in sorted(cands, key=lambda c: -c[0]):
        banks.setdefault(c[4], []).append(c)
    order = [banks[b] for b in sorted(banks, reverse=True)]
    chosen: list = []
    for depth in range(k):
        for bank in order:
            if depth < len(bank) and len(chosen) < k:
                chosen.append(bank[depth])
    return chosen


def _choose(cands: dict[tuple[int, int], float], i: int, pos: int, k: int, track: Tracker, states: list[State],
            fin: Finished, tokens: Tensor) -> list[tuple[float, int, int, State, int]]:
    """Sentence i's (at batch position ``pos``) next K beams from its candidates; EOS candidates among its K
    best finish (EOS is only open once every phrase is placed)."""
    ranked = sorted(cands.items(), key=lambda kv: -kv[1])
    for (row, col), score in ranked[:k]:
        if col == track.eos and not fin.done[i]:
            fin.add(i, tokens[row].tolist(), score, missing=track.lost[i])
            fin.done[i] = len(fin.hyps[i]) >= fin.beam
    rest = []
    for (row, col), score in ranked:
        if col != track.eos:
            state = track.advance(i, states[row], col)
            rest.append((score, row, col, state, track.placed(i, state)))
    chosen = _allocate(rest, k)
    pad = (float("-inf"), pos * k, chosen[0][2] if chosen else track.eos, track.start(i), 0)
    return chosen + [pad] * (k - len(chosen))


def _take_capped(fin: Finished, track: Tracker, alive: list[int], t: int, cum: Tensor, tokens: Tensor,
                 states: list[State]) -> None:
    """Sentences at their cap after step t (or with no live beam left) end with their live beams as they are,
    each naming the phrases it lacks."""
    k = fin.beam
    for pos, i in enumerate(alive):
        if not fin.done[i] and (t + 1 >= max(fin.caps[i], 1) or cum[pos].max() == float("-inf")):
            for j, logprob in enumerate(cum[pos].tolist()):
                if logprob > float("-inf"):
                    row = pos * k + j
                    fin.add(i, tokens[row].tolist(), logprob, missing=track.missing(i, states[row]))
            fin.done[i] = True


@torch.no_grad()
def constrained_beam_search(model: Decodable, src: Tensor, src_len: Tensor, max_len: Tensor,
                            terms: Sequence[Sequence[Term]], *, beam: int, alpha: float = 1.0, n_best: int = 1,
                            min_len: int = 0, no_repeat_ngram: int = 0,
                            glue: Sequence[int] = ()) -> list[list[Hypothesis]]:
    """Beam search in which sentence b's translation holds each phrase of ``terms[b]`` (as often as its
    ``times``). Arguments as nmt.decoding.search.beam_search; ``max_len`` (B,) caps; ``glue``: the target pieces
    that continue a word (nmt.decoding.terms.word_glue), never right after a phrase, which ends a word.

    :return: per sentence, ``n_best`` hypotheses: those that place every phrase first, then by score; each
        names the phrases it lacks in ``missing`` (empty when all are placed).
    """
    b, k, dev = src.shape[0], beam, src.device
    state = model.reorder(model.encode(src, src_len), torch.arange(b, device=dev).repeat_interleave(k))
    cols = Columns(model)
    steer, track = Steering(cols, min_len, None, no_repeat_ngram, dev), Tracker(terms, cols, glue)
    fin = Finished(k, alpha, max_len.tolist(), [[] for _ in range(b)], [False] * b)
    alive, states = list(range(b)), [track.start(i) for i in range(b) for _ in range(k)]
    cum = torch.full((b, k), float("-inf"), device=dev)
    cum[:, 0] = 0.0
    tokens, prev = torch.empty((b * k, 0), dtype=torch.long, device=dev), torch.full((b * k,), BOS, device=dev)
    for t in range(int(max(fin.caps, default=0))):
        n = len(alive)
        logp, state, _ = model.step(prev, state)
        logp = steer(logp, t, lambda alive=alive: torch.tensor(alive, device=dev).repeat_interleave(k), tokens.tolist)
        _ban(logp, track, alive, states, k)
        cands = _candidates(cum.view(-1, 1) + logp, track, alive, states, k)
        picked = [_choose(c, i, pos, k, track, states, fin, tokens)
                  for pos, (i, c) in enumerate(zip(alive, cands, strict=True))]
        flat = [p for beams in picked for p in beams]
        cum = torch.tensor([p[0] for p in flat], device=dev).view(n, k)
        rows = torch.tensor([p[1] for p in flat], device=dev).view(n, k)
        prev = cols.ids[torch.tensor([p[2] for p in flat], device=dev)].view(n, k)
        states = [p[3] for p in flat]
        tokens = torch.cat([tokens.index_select(0, rows.view(-1)), prev.view(-1, 1)], dim=1)
        _take_capped(fin, track, alive, t, cum, tokens, states)
        keep = [pos for pos, i in enumerate(alive) if not fin.done[i]]
        if not keep:
            break
        if len(keep) < n and n - len(keep) >= COMPACT_AT * n:
            _, rows, prev, cum, tokens = drop_done(keep, rows, prev, cum, tokens.view(n, k, -1))
            tokens = tokens.view(len(keep) * k, -1)
            states = [states[pos * k + j] for pos in keep for j in range(k)]
            alive = [alive[pos] for pos in keep]
        state = model.reorder(state, rows.reshape(-1), same_sources=len(alive) == n)
        prev = prev.reshape(-1)
    return [sorted(h, key=lambda x: (len(x.missing), -x.score))[:n_best] for h in fin.hyps]
