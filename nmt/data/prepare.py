"""From a data config to tokenized, length-filtered training pairs and a dev set.

The training split stays in Hugging Face ``datasets``' memory-mapped Arrow files from loading to batching:
sentencepiece reads it in chunks and samples ``data.spm_input_sentence_size`` sentences, tokenization and the
length filter are ``datasets.map``/``filter`` passes written to disk, and batching reads only the length
columns into memory (nmt.data.batching). A corpus larger than memory trains in bounded memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import datasets
import pyarrow.compute as pc

from nmt.config import DataConfig
from nmt.config.pairs import parse_pairs
from nmt.data.load import load_split
from nmt.data.multilingual import LanguageTexts, combine, load_pairs
from nmt.data.tokenizer import Tokenizer, train_or_load


@dataclass
class Corpus:
    """Tokenized data for training, plus the dev references as raw text for BLEU.

    :param train: the kept training pairs (Arrow-backed): ``src_ids``, ``tgt_ids``, ``src_len``, ``tgt_len``, and
        with ``data.spm_alpha`` > 0 their texts ``src`` and ``tgt`` (nmt.data.sampled_batches).
    """

    tokenizer: Tokenizer
    train: datasets.Dataset
    dev_src: list[list[int]]
    dev_tgt: list[list[int]]
    dev_refs: list[str]
    n_train_raw: int

    @property
    def train_src(self) -> datasets.Column:
        """Training source id lists, read lazily from Arrow."""
        return self.train["src_ids"]

    @property
    def train_tgt(self) -> datasets.Column:
        return self.train["tgt_ids"]

    @cached_property
    def target_pieces(self) -> list[int]:
        """The sorted ids of the pieces that occur on the target side of the kept training pairs (one Arrow pass,
        in chunks, through the length filter's row selection); checkpoints keep them so that search scores only
        these (TranslationModel.restrict_output)."""
        seen: set[int] = set()
        for rows in self.train.select_columns(["tgt_ids"]).with_format("arrow").iter(batch_size=100_000):
            seen.update(pc.unique(pc.list_flatten(rows["tgt_ids"])).to_pylist())
        return sorted(seen)


class TextColumn:
    """A string column that can be iterated over several times, read from Arrow in chunks."""

    def __init__(self, ds: datasets.Dataset, column: str, chunk: int = 10_000) -> None:
        self.ds, self.column, self.chunk = ds.select_columns([column]), column, chunk

    def __iter__(self) -> Iterator[str]:
        for rows in self.ds.iter(batch_size=self.chunk):
            yield from rows[self.column]

    def __len__(self) -> int:
        return len(self.ds)


def _encode(b: dict, tok: Tokenizer, tags: list[int] | None = None) -> dict:
    src, tgt = tok.encode_src(b["src"]), tok.encode_tgt(b["tgt"])
    if tags:  # multilingual: the pair's target tag is the first source piece
        src = [[tags[p], *s] for s, p in zip(src, b["pair"], strict=True)]
    return {"src_ids": src, "tgt_ids": tgt, "src_len": [len(x) for x in src], "tgt_len": [len(x) for x in tgt]}


def tokenize(ds: datasets.Dataset, tok: Tokenizer, key: str, tags: list[int] | None = None) -> datasets.Dataset:
    """Add ``src_ids``, ``tgt_ids`` and their lengths ``src_len``, ``tgt_len`` with ``datasets.map`` (cached
    on disk per dataset and tokenizer); ``tags``: the tag id of each pair index of a ``pair`` column."""
    fp = hashlib.sha256(f"{ds._fingerprint}|{key}|len{tags or ''}".encode()).hexdigest()[:16]
    return ds.map(
        _encode,
        fn_kwargs={"tok": tok, "tags": tags},
        batched=True,
        batch_size=2000,
        new_fingerprint=fp,
        desc="tokenizing",
    )


def prepare(cfg: DataConfig, tokenizer: Tokenizer | None = None) -> Corpus:
    """Load train and dev (and check test), train (or reuse) sentencepiece, tokenize, and filter training pairs
    by length.

    Training pairs with an empty side or more than ``cfg.max_len`` pieces on either side are dropped.
    :param tokenizer: use this one (e.g. from a checkpoint being resumed) instead of training one.
    """
    datasets.disable_progress_bars()
    train, dev, tokenizer = _load(cfg, tokenizer)
    key = hashlib.sha256(tokenizer.src_model + b"|" + tokenizer.tgt_model).hexdigest()
    tags = [tokenizer.tag_id(t) for _, t in parse_pairs(cfg.pairs)] or None
    train_t = tokenize(train, tokenizer, key, tags)
    texts = ["src", "tgt"] if cfg.spm_alpha > 0 else []  # subword sampling re-encodes them each epoch
    lead = 1 if tags else 0  # the tag is not part of the sentence: an empty sentence is still dropped
    keep = train_t.select_columns(["src_ids", "tgt_ids", "src_len", "tgt_len", *texts, *(["pair"] if tags else [])]
                                  ).filter(
        lambda src_len, tgt_len: [lead < s <= cfg.max_len and 0 < t <= cfg.max_len
                                  for s, t in zip(src_len, tgt_len, strict=True)],
        input_columns=["src_len", "tgt_len"],
        batched=True,
        desc="filtering",
    )
    dev_t = tokenize(dev, tokenizer, key, tags)
    return Corpus(
        tokenizer=tokenizer,
        train=keep,
        dev_src=list(dev_t["src_ids"]),
        dev_tgt=list(dev_t["tgt_ids"]),
        dev_refs=list(dev["tgt"]),
        n_train_raw=len(train),
    )


def _load(cfg: DataConfig, tokenizer: Tokenizer | None) -> tuple[datasets.Dataset, datasets.Dataset, Tokenizer]:
    """The train and dev splits (several pairs: combined, nmt.data.multilingual), the test split checked, and the
    tokenizer (``tokenizer``, else trained or reused from the cache)."""
    if not cfg.pairs:
        train, dev = load_split(cfg, "train"), load_split(cfg, "dev")
        load_split(cfg, "test")  # not used in training, but checked now: a bad test split stops the run at once
        texts = (TextColumn(train, "src"), TextColumn(train, "tgt"))
    else:
        parts = load_pairs(cfg, "train")
        train, dev = combine(parts), combine(load_pairs(cfg, "dev"), interleave=True)
        load_pairs(cfg, "test")
        texts = (LanguageTexts(parts, cfg.pairs), [])  # every language once; joint_vocab chains the two sides
    return train, dev, tokenizer if tokenizer is not None else train_or_load(*texts, cfg)
