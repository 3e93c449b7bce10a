"""``decode.no_repeat_ngram=n``: no output holds an n-gram twice, in greedy and beam search; 0 changes nothing."""

from __future__ import annotations

import pytest
from helpers import random_batch, tiny_model

from nmt.decoding.rows import repeat_bans
from nmt.decoding.search import beam_search, greedy, max_lengths


def test_repeat_bans() -> None:
    assert repeat_bans([5, 6, 7, 5, 6], 3) == {7}  # "5 6 7" again
    assert repeat_bans([5, 6, 5, 6, 8, 5], 2) == {6}
    assert repeat_bans([5, 6, 7], 1) == {5, 6, 7}
    assert repeat_bans([5, 6, 7], 0) == set() and repeat_bans([5], 3) == set()


def _ngrams(tokens: list[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_output_repeats_an_ngram(n: int) -> None:
    model, b = tiny_model(seed=8), random_batch()
    caps = max_lengths(b.src_len, 3.0, 8)  # long outputs: a tiny untrained model repeats itself
    outs = [h.tokens for h in greedy(model, b.src, b.src_len, caps, no_repeat_ngram=n)]
    outs += [h.tokens for hs in beam_search(model, b.src, b.src_len, caps, beam=3, n_best=3, no_repeat_ngram=n)
             for h in hs]
    assert all(len(set(_ngrams(t, n))) == len(_ngrams(t, n)) for t in outs)
    plain = [h.tokens for h in greedy(model, b.src, b.src_len, caps)]
    assert any(len(set(_ngrams(t, n))) < len(_ngrams(t, n)) for t in plain)  # the setting had work to do
    assert [h.tokens for h in greedy(model, b.src, b.src_len, caps, no_repeat_ngram=0)] == plain
