"""Several language pairs as one corpus (``data.pairs``, Johnson et al. 2017): each pair loaded as a single-pair
corpus, the pairs concatenated with a ``pair`` column (the pair's index in ``data.pairs``), and the target tag put
before every source by tokenization (nmt.data.prepare). Training samples the pairs by temperature
(:func:`pair_shares`); dev interleaves them, so ``train.eval_max_sentences`` takes from every pair.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import replace

import datasets
import numpy as np

from nmt.config import DataConfig
from nmt.config.pairs import parse_pairs
from nmt.data.batching import BatchIterator, token_batches
from nmt.data.load import load_split


def pair_config(cfg: DataConfig, src: str, tgt: str) -> DataConfig:
    """The single-pair config of one of ``cfg``'s pairs (same corpus, split names and settings)."""
    return replace(cfg, pairs=[], pair_temperature=1.0, src_lang=src, tgt_lang=tgt)


def load_pairs(cfg: DataConfig, split: str) -> list[datasets.Dataset]:
    """The ``split`` of every pair of ``cfg.pairs``, in their order, each with columns ``src`` and ``tgt``."""
    return [load_split(pair_config(cfg, s, t), split) for s, t in parse_pairs(cfg.pairs)]


def combine(parts: Sequence[datasets.Dataset], *, interleave: bool = False) -> datasets.Dataset:
    """The pairs' datasets as one, with a ``pair`` column (int32: the part's index). ``interleave``: the rows taken
    in turn from each part (first rows of every pair first), else part after part."""
    tagged = [ds.add_column("pair", np.full(len(ds), i, dtype=np.int32)) for i, ds in enumerate(parts)]
    whole = datasets.concatenate_datasets(tagged)
    if not interleave:
        return whole
    starts = np.cumsum([0, *(len(ds) for ds in parts)])
    rounds = itertools.zip_longest(*(range(a, b) for a, b in itertools.pairwise(starts)))
    return whole.select([i for row in rounds for i in row if i is not None])


class LanguageTexts:
    """The training text of each language once (its first pair's side), for the joint sentencepiece model: in a
    many-to-one corpus the shared target would otherwise count once per pair."""

    def __init__(self, parts: Sequence[datasets.Dataset], pairs: list[str], chunk: int = 10_000) -> None:
        seen: dict[str, tuple[datasets.Dataset, str]] = {}
        for ds, (s, t) in zip(parts, parse_pairs(pairs), strict=True):
            seen.setdefault(s, (ds, "src"))
            seen.setdefault(t, (ds, "tgt"))
        self.sides, self.chunk = [ds.select_columns([col]) for ds, col in seen.values()], chunk
        self.columns = [col for _, col in seen.values()]

    def __iter__(self) -> Iterator[str]:
        for ds, col in zip(self.sides, self.columns, strict=True):
            for rows in ds.iter(batch_size=self.chunk):
                yield from rows[col]

    def __len__(self) -> int:
        return sum(len(ds) for ds in self.sides)


def pair_shares(sizes: Sequence[int], temperature: float) -> np.ndarray:
    """Each pair's share of an epoch: ``n_i^(1/T)`` normalised (T=1: proportional to the sizes; T -> inf: uniform;
    Arivazhagan et al. 2019, "Massively Multilingual Neural Machine Translation in the Wild")."""
    n = np.asarray(sizes, dtype=np.float64)
    w = np.where(n > 0, np.exp(np.log(np.maximum(n, 1)) / temperature), 0.0)
    return w / w.sum()


def epoch_rows(pair: np.ndarray, temperature: float, seed: int, epoch: int) -> np.ndarray:
    """The rows of one epoch (``pair``: each row's pair index): as many as there are rows in all, pair i giving
    ``round(share_i * N)`` of them: its rows in full as often as they fit, then a random subset without repeats.
    The same (seed, epoch) always gives the same rows (a resumed run continues the same epoch)."""
    rng = np.random.default_rng([seed, epoch, 26])
    k = len(np.bincount(pair)) if len(pair) else 0
    rows = [np.flatnonzero(pair == i) for i in range(k)]
    counts = np.rint(pair_shares([len(r) for r in rows], temperature) * len(pair)).astype(np.int64) if k else []
    picked = [np.concatenate([np.tile(r, c // len(r)), rng.choice(r, c % len(r), replace=False)])
              for r, c in zip(rows, counts, strict=True) if len(r)]
    return np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)


class PairSampledBatchIterator(BatchIterator):
    """Training batches over each epoch's rows drawn by :func:`epoch_rows` (``data.pair_temperature`` != 1)."""

    temperature: float = 1.0
    pair: np.ndarray

    @classmethod
    def over(cls, ds: datasets.Dataset, temperature: float, max_tokens: int, *, seed: int,
             max_sentences: int = 0) -> PairSampledBatchIterator:
        """Over a prepared training set with a ``pair`` column (nmt.data.prepare)."""
        it = cls.from_dataset(ds, max_tokens, shuffle=True, seed=seed, max_sentences=max_sentences)
        it.temperature = temperature
        it.pair = np.concatenate([np.asarray(b["pair"], dtype=np.int64)
                                  for b in ds.select_columns(["pair"]).iter(batch_size=100_000)])
        return it

    def epoch(self, epoch: int) -> list[list[int]]:
        """Batches of dataset row indices; a row drawn twice in the epoch appears in two batches."""
        rows = epoch_rows(self.pair, self.temperature, self.seed, epoch)
        batches = token_batches(self.src_lens[rows], self.tgt_lens[rows], self.max_tokens, shuffle=True,
                                seed=self.seed * 100_003 + epoch, max_sentences=self.max_sentences)
        return [rows[b].tolist() for b in batches]
