"""Beam search against greedy, against hand-computed answers on scripted log-probabilities, and against the
model's own pair score."""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import Tensor

from nmt.config import ModelConfig
from nmt.data.batching import collate
from nmt.data.tokenizer import BOS, EOS
from nmt.model.seq2seq import Seq2Seq
from nmt.search import beam_search, greedy, length_penalty, max_lengths

A, B = 4, 5  # two word ids after PAD UNK BOS EOS


class PrefixModel:
    """A fake model whose next-token distribution is a table keyed by the output prefix (no network)."""

    def __init__(self, table: dict[tuple[int, ...], dict[int, float]], vocab: int = 6) -> None:
        self.table, self.vocab = table, vocab

    def encode(self, src: Tensor, src_len: Tensor) -> Tensor:
        return torch.zeros(src.shape[0], 0, dtype=torch.long)  # state: (N, t) tokens emitted so far

    def step(self, prev: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        first = state.shape[1] == 0 and bool((prev == BOS).all())  # the first step sees only BOS
        hist = state if first else torch.cat([state, prev.unsqueeze(1)], dim=1)
        logp = torch.full((prev.shape[0], self.vocab), float("-inf"))
        for r, row in enumerate(hist.tolist()):
            for tok, p in self.table.get(tuple(row), {EOS: 1.0}).items():
                logp[r, tok] = math.log(p)
        return logp, hist

    @staticmethod
    def reorder(state: Tensor, index: Tensor) -> Tensor:
        return state.index_select(0, index)


# p(B EOS) = .36 beats greedy's p(A A EOS) = .24
TABLE = {(): {A: 0.6, B: 0.4}, (A,): {A: 0.4, B: 0.3, EOS: 0.3}, (B,): {EOS: 0.9, A: 0.1},
         (A, A): {EOS: 1.0}, (A, B): {EOS: 1.0}, (B, A): {EOS: 1.0}}


def _src(n: int = 1) -> tuple[Tensor, Tensor]:
    return torch.full((n, 3), 7), torch.full((n,), 3)


def test_beam_finds_the_hand_computed_best_where_greedy_does_not() -> None:
    src, src_len = _src()
    caps = torch.tensor([5])
    assert greedy(PrefixModel(TABLE), src, src_len, caps) == [[A, A]]
    best = beam_search(PrefixModel(TABLE), src, src_len, caps, beam=2, alpha=0.0, n_best=3)[0]
    assert best[0].tokens == [B] and math.isclose(best[0].logprob, math.log(0.36), rel_tol=1e-5)
    # step 2 finishes A A (.24): two finished = the beam size, so the search ends (A EOS, .18, tied with
    # A B and ranked outside the first K candidates at step 1, was never set aside)
    assert [h.tokens for h in best[1:]] == [[A, A]]
    assert math.isclose(best[1].logprob, math.log(0.24), rel_tol=1e-5)


def test_length_penalty_prefers_longer_hypotheses() -> None:
    # raw: p(A EOS) = .5 > p(A A EOS) = .45; with alpha=2, -.693 / (7/6)^2 = -.509 < -.799 / (8/6)^2 = -.449
    table = {(): {A: 1.0}, (A,): {EOS: 0.5, A: 0.5}, (A, A): {EOS: 0.9, B: 0.1}, (A, A, B): {EOS: 1.0}}
    src, src_len = _src()
    raw = beam_search(PrefixModel(table), src, src_len, torch.tensor([6]), beam=3, alpha=0.0)[0][0]
    assert raw.tokens == [A]
    norm = beam_search(PrefixModel(table), src, src_len, torch.tensor([6]), beam=3, alpha=2.0, n_best=3)[0]
    for h in norm:
        assert math.isclose(h.score, h.logprob / length_penalty(len(h.tokens) + 1, 2.0), rel_tol=1e-6)
    assert [h.tokens for h in norm] == [[A, A], [A], [A, A, B]]


def _model(seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    cfg = replace(ModelConfig(), emb_dim=10, hidden_dim=14, maxout_dim=6, dropout=0.0, init="torch")
    return Seq2Seq(cfg, 23, 19).eval()


def _batch():
    g = torch.Generator().manual_seed(3)
    src = [torch.randint(4, 23, (n,), generator=g).tolist() for n in (5, 2, 7)]
    return collate(src, [[4]] * 3, range(3))


def test_beam_of_one_equals_greedy() -> None:
    model, b = _model(), _batch()
    caps = max_lengths(b.src_len, 1.5, extra=4)
    beams = beam_search(model, b.src, b.src_len, caps, beam=1, alpha=0.0)
    assert [h[0].tokens for h in beams] == greedy(model, b.src, b.src_len, caps)


def test_reported_score_equals_model_score_and_nbest_is_sorted_and_distinct() -> None:
    model, b = _model(1), _batch()
    with torch.no_grad():
        model.decoder.out.bias[EOS] += 1.0  # hypotheses that end with EOS before the cap
    caps = max_lengths(b.src_len, 2.0, extra=6)
    nbest = beam_search(model, b.src, b.src_len, caps, beam=4, alpha=1.0, n_best=4)
    checked = 0
    for i, hyps in enumerate(nbest):
        assert len(hyps) == 4
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == len(hyps)
        for h in hyps:
            if len(h.tokens) < int(caps[i]):  # ended with EOS: log p(y|x) includes it
                pair = collate([b.src[i, : b.src_len[i]].tolist()], [h.tokens], [0])
                with torch.no_grad():
                    assert abs(float(model.score(pair)[0]) - h.logprob) < 1e-4
                checked += 1
    assert checked >= 3
