"""From a data config to tokenized, length-filtered training pairs and a dev set."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import datasets

from nmt.config import DataConfig
from nmt.data.load import load_split
from nmt.data.tokenizer import Tokenizer, train_or_load


@dataclass
class Corpus:
    """Tokenized data for training: id lists, plus the dev references as raw text for BLEU."""

    tokenizer: Tokenizer
    train_src: list[list[int]]
    train_tgt: list[list[int]]
    dev_src: list[list[int]]
    dev_tgt: list[list[int]]
    dev_refs: list[str]
    n_train_raw: int


def tokenize(ds: datasets.Dataset, tok: Tokenizer, key: str) -> datasets.Dataset:
    """Add ``src_ids`` and ``tgt_ids`` columns with ``datasets.map`` (cached on disk per dataset and tokenizer)."""
    fp = hashlib.sha256(f"{ds._fingerprint}|{key}".encode()).hexdigest()[:16]
    return ds.map(
        lambda b: {"src_ids": tok.encode_src(b["src"]), "tgt_ids": tok.encode_tgt(b["tgt"])},
        batched=True,
        batch_size=2000,
        new_fingerprint=fp,
        desc="tokenizing",
    )


def prepare(cfg: DataConfig, tokenizer: Tokenizer | None = None) -> Corpus:
    """Load train and dev, train (or reuse) sentencepiece, tokenize, and filter training pairs by length.

    Training pairs with an empty side or more than ``cfg.max_len`` pieces on either side are dropped.
    :param tokenizer: use this one (e.g. from a checkpoint being resumed) instead of training one.
    """
    datasets.disable_progress_bars()
    train = load_split(cfg, "train")
    dev = load_split(cfg, "dev")
    if tokenizer is None:
        tokenizer = train_or_load(train["src"], train["tgt"], cfg)
    key = hashlib.sha256(tokenizer.src_model + b"|" + tokenizer.tgt_model).hexdigest()
    train_t = tokenize(train, tokenizer, key)
    keep = train_t.filter(
        lambda b: [0 < len(s) <= cfg.max_len and 0 < len(t) <= cfg.max_len
                   for s, t in zip(b["src_ids"], b["tgt_ids"], strict=True)],
        batched=True,
        desc="filtering",
    )
    dev_t = tokenize(dev, tokenizer, key)
    return Corpus(
        tokenizer=tokenizer,
        train_src=keep["src_ids"],
        train_tgt=keep["tgt_ids"],
        dev_src=dev_t["src_ids"],
        dev_tgt=dev_t["tgt_ids"],
        dev_refs=dev["tgt"],
        n_train_raw=len(train),
    )
