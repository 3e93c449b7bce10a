"""Greedy search against teacher forcing and scripted models; beam search against greedy, against hand-computed
answers on scripted log-probabilities, and against the model's own pair score."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import NamedTuple

import pytest
import torch
from helpers import SRC_LENS, random_batch, sub_batch, tiny_model
from torch import Tensor

from nmt.config import ModelConfig
from nmt.data.batching import collate
from nmt.data.tokenizer import BOS, EOS, PAD
from nmt.decoding.rows import length_penalty
from nmt.decoding.search import beam_search, greedy, max_lengths
from nmt.model import build_model
from nmt.model.base import TranslationModel
from nmt.model.cho2014 import RNNEncoderDecoder
from nmt.model.contract import Step


@pytest.fixture(params=["fused", "equations"])
def cell(request: pytest.FixtureRequest) -> str:
    return request.param


def _greedy_tokens(*args) -> list[list[int]]:
    return [h.tokens for h in greedy(*args)]

A, B = 4, 5  # two word ids after PAD UNK BOS EOS


class Scripted:
    """What a scripted model (no network) needs for the decoding contract besides encode and step."""

    vocab: int
    attends = False
    device = torch.device("cpu")

    @property
    def columns(self) -> Tensor:
        return torch.arange(self.vocab)


class PrefixModel(Scripted):
    """A fake model whose next-token distribution is a table keyed by the output prefix (no network)."""

    def __init__(self, table: dict[tuple[int, ...], dict[int, float]], vocab: int = 6) -> None:
        self.table, self.vocab = table, vocab

    def encode(self, src: Tensor, src_len: Tensor) -> Tensor:
        return torch.zeros(src.shape[0], 0, dtype=torch.long)  # state: (N, t) tokens emitted so far

    def step(self, prev: Tensor, state: Tensor, *, normalize: bool = True) -> Step:
        first = state.shape[1] == 0 and bool((prev == BOS).all())  # the first step sees only BOS
        hist = state if first else torch.cat([state, prev.unsqueeze(1)], dim=1)
        logp = torch.full((prev.shape[0], self.vocab), float("-inf"))
        for r, row in enumerate(hist.tolist()):
            for tok, p in self.table.get(tuple(row), {EOS: 1.0}).items():
                logp[r, tok] = math.log(p)
        return Step(logp, hist, None)

    @staticmethod
    def reorder(state: Tensor, index: Tensor, same_sources: bool = False) -> Tensor:
        return state.index_select(0, index)


# p(B EOS) = .36 beats greedy's p(A A EOS) = .24
TABLE = {(): {A: 0.6, B: 0.4}, (A,): {A: 0.4, B: 0.3, EOS: 0.3}, (B,): {EOS: 0.9, A: 0.1},
         (A, A): {EOS: 1.0}, (A, B): {EOS: 1.0}, (B, A): {EOS: 1.0}}


def _src(n: int = 1) -> tuple[Tensor, Tensor]:
    return torch.full((n, 3), 7), torch.full((n,), 3)


def test_beam_finds_the_hand_computed_best_where_greedy_does_not() -> None:
    src, src_len = _src()
    caps = torch.tensor([5])
    assert _greedy_tokens(PrefixModel(TABLE), src, src_len, caps) == [[A, A]]
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


def _model(seed: int = 0) -> RNNEncoderDecoder:
    torch.manual_seed(seed)
    cfg = replace(ModelConfig(), emb_dim=10, hidden_dim=14, maxout_dim=6, dropout=0.0, init="torch")
    return RNNEncoderDecoder(cfg, 23, 19).eval()


def _batch():
    g = torch.Generator().manual_seed(3)
    src = [torch.randint(4, 23, (n,), generator=g).tolist() for n in (5, 2, 7)]
    return collate(src, [[4]] * 3, range(3))


def test_beam_of_one_equals_greedy() -> None:
    model, b = _model(), _batch()
    caps = max_lengths(b.src_len, 1.5, extra=4)
    beams = beam_search(model, b.src, b.src_len, caps, beam=1, alpha=0.0)
    assert [h[0].tokens for h in beams] == _greedy_tokens(model, b.src, b.src_len, caps)


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


@pytest.mark.parametrize("arch", ["cho2014", "rnnsearch"])
def test_beam_reorder_without_copying_the_source_fields_changes_nothing(arch: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Beams trade places within their sentence at every step, so the source-only fields (annotations, keys, mask;
    Cho 2014's c) are left in place; until a sentence leaves the batch, when every field is selected again."""
    torch.manual_seed(5)
    cfg = replace(ModelConfig(), arch=arch, emb_dim=10, hidden_dim=14, maxout_dim=6, attention_dim=8, dropout=0.0,
                  init="torch")
    model, b = build_model(cfg, 23, 19).eval(), _batch()
    caps = max_lengths(b.src_len, 2.0, extra=6)
    calls: list[bool] = []
    full = TranslationModel.reorder

    def spy(state, index, same_sources=False):
        calls.append(same_sources)
        out = full(state, index, same_sources)
        for name in state.SOURCE_FIELDS:
            assert (getattr(out, name) is getattr(state, name)) == same_sources
        return out

    monkeypatch.setattr(model, "reorder", spy)
    fast = beam_search(model, b.src, b.src_len, caps, beam=4, alpha=1.0, n_best=4)
    assert calls.count(True) >= 2 and calls.count(False) >= 2  # the first expands the beams; some sentences left
    monkeypatch.setattr(model, "reorder", lambda state, index, same_sources=False: full(state, index))
    slow = beam_search(model, b.src, b.src_len, caps, beam=4, alpha=1.0, n_best=4)
    assert [[(h.tokens, h.logprob) for h in hs] for hs in fast] == [[(h.tokens, h.logprob) for h in hs] for hs in slow]


# --------------------------------------------------------------------------- greedy search


def test_greedy_is_argmax_of_teacher_forcing_on_its_own_output(cell: str) -> None:
    model, b = tiny_model(cell=cell, dropout=0.0), random_batch()
    model = model.double()  # no near-ties between the two computations
    caps = torch.tensor([4, 9, 2, 12])
    stopped, capped = 0, 0
    for eos_bias in (0.0, 0.5, 1.0, 1.5, 2.0):  # from "never EOS" to "EOS at once": both endings occur
        with torch.no_grad():
            model.decoder.out.bias[EOS] += eos_bias
        hyps = _greedy_tokens(model, b.src, b.src_len, caps)
        for i, y in enumerate(hyps):
            assert len(y) <= int(caps[i]) and EOS not in y
            forced = collate([b.src[i, : b.src_len[i]].tolist()], [y], [i])
            with torch.no_grad():
                _, c = model.encoder(forced.src, forced.src_len)
                logits = model.decoder.out(model.decoder.features(forced.tgt_in, c))
                logits[..., [PAD, BOS]] = float("-inf")  # search never emits these
                pred = logits.argmax(-1)[0]
            assert pred[: len(y)].tolist() == y
            if len(y) < int(caps[i]):  # stopped early: because the model predicted EOS
                assert int(pred[len(y)]) == EOS
                stopped += 1
            else:
                capped += 1
        with torch.no_grad():
            model.decoder.out.bias[EOS] -= eos_bias
    assert stopped > 0 and capped > 0  # both ways of ending were exercised


def test_greedy_of_a_batch_equals_greedy_of_each_sentence() -> None:
    model, b = tiny_model(), random_batch()
    caps = max_lengths(b.src_len, 1.5, extra=3)
    hyps = _greedy_tokens(model, b.src, b.src_len, caps)
    for i in range(len(SRC_LENS)):
        alone = sub_batch(b, [i])
        assert _greedy_tokens(model, alone.src, alone.src_len, caps[i : i + 1]) == [hyps[i]]


class ScriptState(NamedTuple):
    t: Tensor  # (B,) steps taken
    rows: Tensor  # (B,) the script of each row

    SOURCE_FIELDS = ()


class ScriptedModel(Scripted):
    """A stand-in for a model whose step emits a fixed token sequence per row, with no network."""

    def __init__(self, scripts: list[list[int]], vocab: int = 8) -> None:
        self.scripts, self.vocab = scripts, vocab

    def encode(self, src: Tensor, src_len: Tensor) -> ScriptState:
        return ScriptState(torch.zeros(src.shape[0], dtype=torch.long), torch.arange(src.shape[0]))

    def step(self, prev: Tensor, state: ScriptState, *, normalize: bool = True) -> Step:
        t, rows = state
        logp = torch.full((len(rows), self.vocab), -10.0)
        for k, (i, ti) in enumerate(zip(rows.tolist(), t.tolist(), strict=True)):
            script = self.scripts[i]
            logp[k, script[ti] if ti < len(script) else 4] = -0.1
        return Step(logp, ScriptState(t + 1, rows), None)

    reorder = staticmethod(TranslationModel.reorder)  # the search drops finished rows


def test_greedy_stops_at_eos_and_respects_max_len() -> None:
    scripts = [[5, 6, EOS, 7, 7], [4, 4, 4, 4, 4, 4, 4], [EOS], [6, 5, 4, 6, 5, 4]]
    model = ScriptedModel(scripts)
    src = torch.full((4, 3), 5)
    hyps = _greedy_tokens(model, src, torch.full((4,), 3), torch.tensor([10, 3, 10, 5]))
    assert hyps == [[5, 6], [4, 4, 4], [], [6, 5, 4, 6, 5]]


def test_greedy_stops_when_all_rows_are_done() -> None:
    calls = []

    class Counting(ScriptedModel):
        def step(self, prev: Tensor, state: ScriptState, *, normalize: bool = True) -> Step:
            calls.append(prev.tolist())
            return super().step(prev, state)

    hyps = _greedy_tokens(Counting([[5, EOS], [EOS]]), torch.full((2, 1), 5), torch.ones(2, dtype=torch.long),
                  torch.tensor([50, 50]))
    assert hyps == [[5], []]
    assert len(calls) == 2 and calls[0] == [BOS, BOS]


def test_max_lengths() -> None:
    assert max_lengths(torch.tensor([1, 4, 10]), 2.0).tolist() == [12, 18, 30]
    assert max_lengths(torch.tensor([3]), 1.5, extra=0).tolist() == [4]


def test_min_len_keeps_a_translation_from_being_empty() -> None:
    table = {(): {EOS: 0.9, A: 0.1}, (A,): {EOS: 1.0}}  # the model would end at once
    src, src_len = _src(2)
    caps = torch.tensor([5, 5])
    assert _greedy_tokens(PrefixModel(table), src, src_len, caps) == [[], []]
    assert [h.tokens for h in greedy(PrefixModel(table), src, src_len, caps, 1)] == [[A], [A]]
    assert [h[0].tokens for h in beam_search(PrefixModel(table), src, src_len, caps, beam=2)] == [[], []]
    assert [h[0].tokens for h in beam_search(PrefixModel(table), src, src_len, caps, beam=2, min_len=1)] == [[A], [A]]
