"""Token-budget batches with length bucketing, padding and masks.

Letters: B batch, S source length, T target length (incl. the BOS or EOS it is shifted by).
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from nmt.data.tokenizer import BOS, EOS, PAD

if TYPE_CHECKING:
    import datasets


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

    def to(self, device: torch.device) -> Batch:
        """The batch on ``device``: itself on the CPU; on a GPU copied from pinned memory without blocking."""
        if device.type == "cpu":
            return self
        return Batch(**{f.name: getattr(self, f.name).pin_memory().to(device, non_blocking=True)
                        for f in dataclasses.fields(self)})


def pad(seqs: Sequence[Sequence[int]], *, prefix: int | None = None, suffix: int | None = None) -> torch.Tensor:
    """(B, L) tensor of the sequences with optional first/last symbol added, right-padded with PAD."""
    lens = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    first = int(prefix is not None)
    width = int(lens.max()) + first + (suffix is not None)
    out = np.full((len(seqs), width), PAD, dtype=np.int64)
    if prefix is not None:
        out[:, 0] = prefix
    body = out[:, first: first + int(lens.max())]  # a view: filling it fills ``out``
    body[np.arange(body.shape[1]) < lens[:, None]] = np.fromiter(itertools.chain.from_iterable(seqs),
                                                                 dtype=np.int64, count=int(lens.sum()))
    if suffix is not None:
        out[np.arange(len(seqs)), first + lens] = suffix
    return torch.from_numpy(out)


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
    src_lens: Sequence[int], tgt_lens: Sequence[int], max_tokens: int, *, shuffle: bool, seed: int = 0,
    max_sentences: int = 0,
) -> list[list[int]]:
    """Group example indices into batches of at most ``max_tokens`` padded positions per side (and at most
    ``max_sentences`` examples, when that is not 0).

    Examples are sorted by length (ties broken at random when shuffling) so that a batch holds similar
    lengths and little padding; the batch order is then shuffled. The padded size of a batch is
    ``len(batch) * (max length + 1)`` on each side (+1 for BOS/EOS); a single example longer than the
    budget forms a batch of its own. Deterministic for a given ``seed``.

    The lengths may be numpy arrays: sorting is done in numpy and no per-example Python objects are kept
    besides the returned indices, so millions of examples batch in bounded memory.

    :return: list of batches, each a list of example indices; every index appears exactly once.
    """
    rng = random.Random(seed)
    n = len(src_lens)
    src_a, tgt_a = np.asarray(src_lens, dtype=np.int64), np.asarray(tgt_lens, dtype=np.int64)
    noise = np.fromiter((rng.random() for _ in range(n)), dtype=np.float64, count=n) if shuffle else np.zeros(n)
    order = np.lexsort((noise, src_a, tgt_a))  # by target length, then source length, then noise (stable)
    starts: list[int] = []  # positions in ``order`` where a batch begins
    size = max_s = max_t = 0
    for pos, (sl, tl) in enumerate(zip(src_a[order].tolist(), tgt_a[order].tolist(), strict=True)):
        s, t = max(max_s, sl + 1), max(max_t, tl + 1)
        if size and ((size + 1) * max(s, t) > max_tokens or size == max_sentences):
            starts.append(pos - size)
            size, s, t = 0, sl + 1, tl + 1
        size += 1
        max_s, max_t = s, t
    if size:
        starts.append(n - size)
    batches = [chunk.tolist() for chunk in np.split(order, starts[1:])] if n else []
    if shuffle:
        rng.shuffle(batches)
    return batches


class BatchIterator:
    """Epochs of token batches over tokenized pairs, resumable at any batch.

    :param src: source id lists; :param tgt: target id lists (same length).
    """

    def __init__(self, src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]], max_tokens: int,
                 *, shuffle: bool, seed: int, max_sentences: int = 0) -> None:
        self.src, self.tgt = src, tgt
        self.max_sentences = max_sentences
        self.src_lens = np.array([len(s) for s in src], dtype=np.int64)
        self.tgt_lens = np.array([len(t) for t in tgt], dtype=np.int64)
        self.max_tokens, self.shuffle, self.seed = max_tokens, shuffle, seed
        self.table: datasets.Dataset | None = None

    @classmethod
    def from_dataset(cls, ds: datasets.Dataset, max_tokens: int, *, shuffle: bool, seed: int,
                     max_sentences: int = 0) -> BatchIterator:
        """Over a ``datasets.Dataset`` with columns ``src_ids``, ``tgt_ids``, ``src_len`` and ``tgt_len``
        (nmt.data.prepare makes them): only the lengths are read into memory, as numpy arrays; each batch's
        rows are read from the memory-mapped Arrow table when the batch is made."""
        it = cls([], [], max_tokens, shuffle=shuffle, seed=seed, max_sentences=max_sentences)
        # read in chunks: formatting a whole (filtered, index-mapped) column at once costs ~1 kB per row
        chunks = [(np.asarray(b["src_len"], dtype=np.int64), np.asarray(b["tgt_len"], dtype=np.int64))
                  for b in ds.select_columns(["src_len", "tgt_len"]).iter(batch_size=100_000)]
        it.src_lens = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, dtype=np.int64)
        it.tgt_lens = np.concatenate([c[1] for c in chunks]) if chunks else np.zeros(0, dtype=np.int64)
        it.table = ds.select_columns(["src_ids", "tgt_ids"])
        return it

    def epoch(self, epoch: int) -> list[list[int]]:
        """The batches of ``epoch`` (0-based); the same epoch always gives the same batches."""
        return token_batches(self.src_lens, self.tgt_lens, self.max_tokens,
                             shuffle=self.shuffle, seed=self.seed * 100_003 + epoch, max_sentences=self.max_sentences)

    def make(self, indices: Sequence[int]) -> Batch:
        if self.table is not None:
            rows = self.table[list(indices)]  # one Arrow take
            return collate(rows["src_ids"], rows["tgt_ids"], indices)
        return collate([self.src[i] for i in indices], [self.tgt[i] for i in indices], indices)
