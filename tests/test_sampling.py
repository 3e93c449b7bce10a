"""Sampling (nmt.decoding.sampling): draws follow the model's distribution and its cuts, the same seed gives the
same samples however the sentences are batched or ordered, and each sample carries its log-probability."""

from __future__ import annotations

import math
from collections import Counter
from typing import NamedTuple

import pytest
import torch
from helpers import random_batch, tiny_model
from torch import Tensor

from nmt.config import DecodeConfig
from nmt.data.batching import collate
from nmt.data.tokenizer import EOS
from nmt.decoding.sampling import reshape, sample
from nmt.decoding.search import decode_all, greedy, max_lengths
from nmt.errors import NMTError
from nmt.model.contract import Step

P = {4: 0.5, 5: 0.3, 6: 0.15, 7: 0.05}  # a one-piece translation: the first piece, then EOS


class OneStep(NamedTuple):
    t: Tensor  # (B,) steps taken

    SOURCE_FIELDS = ()


class OnePiece:
    """A scripted model: the first piece from P, then EOS."""

    attends, device, vocab = False, torch.device("cpu"), 8
    columns = torch.arange(8)

    def encode(self, src: Tensor, src_len: Tensor) -> OneStep:
        return OneStep(torch.zeros(src.shape[0], dtype=torch.long))

    def step(self, prev: Tensor, state: OneStep, *, normalize: bool = True) -> Step:
        logp = torch.full((len(state.t), self.vocab), float("-inf"))
        for row, t in enumerate(state.t.tolist()):
            if t == 0:
                for piece, p in P.items():
                    logp[row, piece] = math.log(p)
            else:
                logp[row, EOS] = 0.0
        return Step(logp, OneStep(state.t + 1), None)

    @staticmethod
    def reorder(state: OneStep, index: Tensor, same_sources: bool = False) -> OneStep:
        return OneStep(state.t.index_select(0, index))


def _firsts(n: int, **kw) -> Counter:
    src = torch.full((1, 2), 5)
    hyps = sample(OnePiece(), src, torch.tensor([2]), torch.tensor([3]), [[5, 5]], n=n, **kw)[0]
    return Counter(h.tokens[0] for h in hyps)


def test_draws_follow_the_distribution_and_its_cuts() -> None:
    n = 4000
    counts = _firsts(n, seed=3)
    for piece, p in P.items():  # within 4 standard deviations of the binomial
        assert abs(counts[piece] / n - p) < 4 * math.sqrt(p * (1 - p) / n), (piece, counts)
    assert set(_firsts(500, topk=2)) == {4, 5}
    assert set(_firsts(500, topp=0.7)) == {4, 5}  # 0.5 alone holds less than 0.7; 0.5 + 0.3 holds it
    assert set(_firsts(200, topp=0.4)) == {4}
    assert set(_firsts(200, temperature=0.01)) == {4}  # almost the argmax


def test_nucleus_keeps_the_smallest_set_holding_p() -> None:
    logp = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    kept = reshape(logp, 1.0, 0, 0.9).isfinite()[0].tolist()
    assert kept == [True, True, True, False]


def test_the_same_seed_gives_the_same_samples_however_batched_or_ordered() -> None:
    model, b = tiny_model(seed=2), random_batch()
    ids = [b.src[i, : b.src_len[i]].tolist() for i in range(b.src.shape[0])]

    def draws(order: list[int], batch_tokens: int, seed: int = 7) -> dict:
        dc = DecodeConfig(method="sample", n_best=3, seed=seed, batch_tokens=batch_tokens)
        hyps = decode_all(model, [ids[i] for i in order], dc)
        return {i: [h.tokens for h in hs] for i, hs in zip(order, hyps, strict=True)}

    base = draws([0, 1, 2, 3], 4096)
    assert draws([3, 1, 0, 2], 5) == base  # other batches, another order
    assert draws([0, 1, 2, 3], 4096, seed=8) != base
    assert any(len({tuple(t) for t in samples}) > 1 for samples in base.values())  # the samples differ


@torch.no_grad()
def test_each_sample_carries_its_log_probability_under_the_model() -> None:
    model, b = tiny_model(seed=4), random_batch()
    ids = [b.src[i, : b.src_len[i]].tolist() for i in range(b.src.shape[0])]
    hyps = sample(model, b.src, b.src_len, max_lengths(b.src_len, 1.5, 3), ids, n=2, seed=1, temperature=1.5)
    for i, samples in enumerate(hyps):
        for h in samples:
            if len(h.tokens) + 1 >= int(max_lengths(b.src_len, 1.5, 3)[i]):
                continue  # stopped by the cap: no EOS in its log-probability
            pair = collate([ids[i]], [h.tokens], [0])
            assert h.logprob == pytest.approx(float(model.score(pair)[0]), abs=1e-4)


def test_top_k_of_one_is_greedy_search() -> None:
    model, b = tiny_model(seed=5), random_batch()
    ids = [b.src[i, : b.src_len[i]].tolist() for i in range(b.src.shape[0])]
    caps = max_lengths(b.src_len, 1.5, 3)
    drawn = [h[0].tokens for h in sample(model, b.src, b.src_len, caps, ids, topk=1, seed=9)]
    assert drawn == [h.tokens for h in greedy(model, b.src, b.src_len, caps)]


def test_sampling_settings_are_checked() -> None:
    with pytest.raises(NMTError, match=r"decode\.topp=0\.0 is out of range"):
        DecodeConfig(method="sample", topp=0.0)
    with pytest.raises(NMTError, match=r"decode\.temperature=0\.0 is out of range"):
        DecodeConfig(method="sample", temperature=0.0)
    assert DecodeConfig(method="sample", n_best=5).n_best == 5  # samples per sentence: no beam needed
