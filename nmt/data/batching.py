"""Token-budget batches with length bucketing, padding and masks.

Letters: B batch, S source length, T target length (incl. the BOS or EOS it is shifted by).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from nmt.data.tokenizer import BOS, EOS, PAD


@dataclass
class Batch:
    """A padded batch.

    :param src: (B, S) source ids, PAD after each sentence's end.
    :param src_len: (B,) real source lengths (at least 1).
    :param tgt_in: (B, T) BOS + target ids (decoder inputs).
    :param tgt_out: (B, T) target ids + EOS (what is predicted), PAD elsewhere.
    :param index: (B,) the examples' positions in the dataset.
    """

    src: torch.Tensor
    src_len: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    index: torch.Tensor

    @property
    def src_mask(self) -> torch.Tensor:
        """(B, S) true on real source tokens."""
        return self.src != PAD

    @property
    def n_tgt_tokens(self) -> int:
        """Number of predicted (non-pad) target positions."""
        return int((self.tgt_out != PAD).sum())

    @property
    def n_src_tokens(self) -> int:
        return int(self.src_len.sum())


def pad(seqs: Sequence[Sequence[int]], *, prefix: int | None = None, suffix: int | None = None) -> torch.Tensor:
    """(B, L) tensor of the sequences with optional first/last symbol added, right-padded with PAD."""
    extra = (prefix is not None) + (suffix is not None)
    out = torch.full((len(seqs), max(len(s) for s in seqs) + extra), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        row = ([prefix] if prefix is not None else []) + list(s) + ([suffix] if suffix is not None else [])
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def collate(src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]], index: Sequence[int]) -> Batch:
    """Pad one batch. Empty source sentences get one EOS so the encoder always reads a token."""
    src = [s if len(s) else [EOS] for s in src]
    return Batch(
        src=pad(src),
        src_len=torch.tensor([len(s) for s in src], dtype=torch.long),
        tgt_in=pad(tgt, prefix=BOS),
        tgt_out=pad(tgt, suffix=EOS),
        index=torch.tensor(list(index), dtype=torch.long),
    )


def token_batches(
    src_lens: Sequence[int], tgt_lens: Sequence[int], max_tokens: int, *, shuffle: bool, seed: int = 0
) -> list[list[int]]:
    """Group example indices into batches of at most ``max_tokens`` padded positions per side.

    Examples are sorted by length (ties broken at random when shuffling) so that a batch holds similar
    lengths and little padding; the batch order is then shuffled. The padded size of a batch is
    ``len(batch) * (max length + 1)`` on each side (+1 for BOS/EOS); a single example longer than the
    budget forms a batch of its own. Deterministic for a given ``seed``.

    :return: list of batches, each a list of example indices; every index appears exactly once.
    """
    rng = random.Random(seed)
    n = len(src_lens)
    noise = [rng.random() for _ in range(n)] if shuffle else [0.0] * n
    order = sorted(range(n), key=lambda i: (tgt_lens[i], src_lens[i], noise[i]))
    batches: list[list[int]] = []
    cur: list[int] = []
    max_s = max_t = 0
    for i in order:
        s, t = max(max_s, src_lens[i] + 1), max(max_t, tgt_lens[i] + 1)
        if cur and (len(cur) + 1) * max(s, t) > max_tokens:
            batches.append(cur)
            cur, s, t = [], src_lens[i] + 1, tgt_lens[i] + 1
        cur.append(i)
        max_s, max_t = s, t
    if cur:
        batches.append(cur)
    if shuffle:
        rng.shuffle(batches)
    return batches


class BatchIterator:
    """Epochs of token batches over tokenized pairs, resumable at any batch.

    :param src: source id lists; :param tgt: target id lists (same length).
    """

    def __init__(self, src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]], max_tokens: int,
                 *, shuffle: bool, seed: int) -> None:
        self.src, self.tgt = src, tgt
        self.src_lens = [len(s) for s in src]
        self.tgt_lens = [len(t) for t in tgt]
        self.max_tokens, self.shuffle, self.seed = max_tokens, shuffle, seed

    def epoch(self, epoch: int) -> list[list[int]]:
        """The batches of ``epoch`` (0-based); the same epoch always gives the same batches."""
        return token_batches(self.src_lens, self.tgt_lens, self.max_tokens,
                             shuffle=self.shuffle, seed=self.seed * 100_003 + epoch)

    def make(self, indices: Sequence[int]) -> Batch:
        return collate([self.src[i] for i in indices], [self.tgt[i] for i in indices], indices)
