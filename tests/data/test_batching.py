"""Tests for :mod:`nmt.data.batching`: token-budget batches and padded tensors."""

from __future__ import annotations

import random

import pytest
import torch

from nmt.data.batching import BatchIterator, collate, pad, token_batches
from nmt.data.tokenizer import BOS, EOS, PAD


def _lengths(n: int, seed: int, lo: int = 1, hi: int = 30) -> tuple[list[int], list[int]]:
    rng = random.Random(seed)
    return [rng.randint(lo, hi) for _ in range(n)], [rng.randint(lo, hi) for _ in range(n)]


def _ids(lengths: list[int], seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randint(EOS + 1, 50) for _ in range(n)] for n in lengths]


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("max_tokens", [40, 97, 500])
def test_each_example_once_and_within_budget(shuffle: bool, max_tokens: int) -> None:
    src_lens, tgt_lens = _lengths(300, seed=max_tokens)
    src_lens[7], tgt_lens[11] = 60, 70  # longer than the smallest budget
    batches = token_batches(src_lens, tgt_lens, max_tokens, shuffle=shuffle, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(300))
    for b in batches:
        assert b
        for lens in (src_lens, tgt_lens):
            padded = len(b) * (max(lens[i] for i in b) + 1)  # +1: BOS or EOS
            assert padded <= max_tokens or len(b) == 1, (b, padded)


def test_sentence_cap_splits_batches_the_token_budget_allows() -> None:
    src_lens, tgt_lens = _lengths(300, seed=4)
    loose = token_batches(src_lens, tgt_lens, 10_000, shuffle=True, seed=5)
    capped = token_batches(src_lens, tgt_lens, 10_000, shuffle=True, seed=5, max_sentences=8)
    assert max(len(b) for b in loose) > 8  # the cap, not the budget, is what limits the batches below
    assert max(len(b) for b in capped) == 8 and sorted(i for b in capped for i in b) == list(range(300))


def test_dataset_backed_iterator_makes_the_same_batches() -> None:
    import datasets

    src, tgt = _ids(list(range(1, 30)), seed=6), _ids(list(range(29, 0, -1)), seed=7)
    table = datasets.Dataset.from_dict({"src_ids": src, "tgt_ids": tgt, "src_len": [len(x) for x in src],
                                        "tgt_len": [len(x) for x in tgt]})
    lists = BatchIterator(src, tgt, 90, shuffle=True, seed=2, max_sentences=3)
    arrow = BatchIterator.from_dataset(table, 90, shuffle=True, seed=2, max_sentences=3)
    assert lists.epoch(1) == arrow.epoch(1)
    for idx in lists.epoch(1):
        a, b = lists.make(idx), arrow.make(idx)
        assert torch.equal(a.src, b.src) and torch.equal(a.tgt_out, b.tgt_out) and torch.equal(a.index, b.index)


def test_over_long_example_forms_its_own_batch() -> None:
    src_lens, tgt_lens = [3, 3, 50, 3], [3, 3, 2, 3]
    batches = token_batches(src_lens, tgt_lens, 20, shuffle=False)
    assert [2] in batches
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3]


def test_batches_group_similar_lengths() -> None:
    src_lens, tgt_lens = _lengths(400, seed=1)
    batches = token_batches(src_lens, tgt_lens, 200, shuffle=True, seed=0)
    padded = sum(len(b) * max(tgt_lens[i] for i in b) for b in batches)
    assert padded <= 1.2 * sum(tgt_lens)  # sorted by length: little target padding


def test_unshuffled_batches_are_sorted_and_seed_independent() -> None:
    src_lens, tgt_lens = _lengths(100, seed=2)
    a = token_batches(src_lens, tgt_lens, 120, shuffle=False, seed=1)
    assert a == token_batches(src_lens, tgt_lens, 120, shuffle=False, seed=2)
    flat = [i for b in a for i in b]
    assert [tgt_lens[i] for i in flat] == sorted(tgt_lens)


def test_epochs_are_reproducible_and_differ() -> None:
    src_lens, tgt_lens = _lengths(200, seed=4)
    src, tgt = _ids(src_lens, 5), _ids(tgt_lens, 6)
    it = BatchIterator(src, tgt, 150, shuffle=True, seed=7)
    e0, e1 = it.epoch(0), it.epoch(1)
    assert e0 == it.epoch(0) == BatchIterator(src, tgt, 150, shuffle=True, seed=7).epoch(0)
    assert e0 != e1
    assert sorted(map(sorted, e0)) != sorted(map(sorted, e1))  # ties broken differently, not only reordered
    assert e0 != BatchIterator(src, tgt, 150, shuffle=True, seed=8).epoch(0)
    for e in (e0, e1):
        assert sorted(i for b in e for i in b) == list(range(200))


def test_pad() -> None:
    out = pad([[5, 6, 7], [8]], prefix=BOS, suffix=EOS)
    assert out.tolist() == [[BOS, 5, 6, 7, EOS], [BOS, 8, EOS, PAD, PAD]]
    assert pad([[5], [6, 7]]).dtype == torch.long


def test_collate_shapes_and_special_tokens() -> None:
    src = [[11, 12, 13], [14], [15, 16]]
    tgt = [[21], [22, 23, 24, 25], [26, 27]]
    b = collate(src, tgt, [9, 4, 6])
    B, S, T = 3, 3, 5  # T = longest target (4) + BOS/EOS
    assert b.src.shape == (B, S) and b.src_mask.shape == (B, S)
    assert b.tgt_in.shape == b.tgt_out.shape == (B, T)
    assert b.src.tolist() == [[11, 12, 13], [14, PAD, PAD], [15, 16, PAD]]
    assert b.src_len.tolist() == [3, 1, 2]
    assert b.src_mask.tolist() == [[True] * 3, [True, False, False], [True, True, False]]
    assert b.tgt_in.tolist() == [[BOS, 21, PAD, PAD, PAD], [BOS, 22, 23, 24, 25], [BOS, 26, 27, PAD, PAD]]
    assert b.tgt_out.tolist() == [[21, EOS, PAD, PAD, PAD], [22, 23, 24, 25, EOS], [26, 27, EOS, PAD, PAD]]
    # tgt_out is tgt_in shifted left by one on real positions
    assert torch.equal(b.tgt_in[:, 1:][b.tgt_out[:, :-1] != EOS], b.tgt_out[:, :-1][b.tgt_out[:, :-1] != EOS])
    assert b.index.tolist() == [9, 4, 6]
    assert b.n_tgt_tokens == 1 + 4 + 2 + B
    assert b.n_src_tokens == 6


def test_collate_empty_sentences() -> None:
    b = collate([[], [5]], [[], [6]], [0, 1])
    assert b.src.tolist() == [[EOS], [5]] and b.src_len.tolist() == [1, 1]
    assert b.tgt_in.tolist() == [[BOS, PAD], [BOS, 6]]
    assert b.tgt_out.tolist() == [[EOS, PAD], [6, EOS]]


def test_iterator_make_picks_the_indexed_examples() -> None:
    src_lens, tgt_lens = _lengths(20, seed=8, hi=6)
    src, tgt = _ids(src_lens, 9), _ids(tgt_lens, 10)
    it = BatchIterator(src, tgt, 30, shuffle=True, seed=0)
    for idx in it.epoch(0):
        b = it.make(idx)
        assert b.index.tolist() == idx
        for row, i in enumerate(idx):
            assert b.src[row, : b.src_len[row]].tolist() == src[i]
            assert b.tgt_out[row, : len(tgt[i])].tolist() == tgt[i]
        assert b.src.numel() <= 30 or len(idx) == 1
