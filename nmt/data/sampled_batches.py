"""Training batches over subword segmentations sampled anew each epoch (``data.spm_alpha`` > 0, Kudo 2018).

Epoch e's pieces are a function of (``train.seed``, e) alone: each sampled side is encoded in corpus order in chunks
of :data:`CHUNK` texts, chunk k drawing from its own generator seeded by (seed, e, side, k). So a resumed run, a
second run with the same seed and every torchrun rank get the same pieces: each rank samples the whole epoch and
takes its share of the same batch list (nmt.training.distributed). Batching by length uses the sampled lengths.
A sampled segmentation longer than ``data.max_len`` falls back to the deterministic one, so the length limit of the
kept pairs holds. Dev and test are never sampled (nmt.data.prepare encodes them once, deterministically).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence

import numpy as np

from nmt.config import DataConfig, TrainConfig
from nmt.config.runs import SpmSample
from nmt.data.batching import BatchIterator
from nmt.data.multilingual import PairSampledBatchIterator
from nmt.data.prepare import Corpus, TextColumn
from nmt.data.subword_sampling import BpeDropout, Segmenter, sample_all, segmenter
from nmt.errors import NMTError

CHUNK = 4096  # texts per generator: chunks could be sampled in parallel and give the same pieces
CHECKED = 200  # texts on which BPE-dropout with no drop must equal sentencepiece's own encode

log = logging.getLogger("nmt.data")


def training_batches(corpus: Corpus, data: DataConfig, tc: TrainConfig) -> BatchIterator:
    """The training batches of a run: over the pieces encoded once (``data.spm_alpha=0``), or over pieces sampled
    anew each epoch (:class:`SampledBatchIterator`), or over pairs drawn by ``data.pair_temperature``."""
    if data.pairs and data.pair_temperature != 1:  # several pairs, each epoch's share drawn by temperature
        return PairSampledBatchIterator.over(corpus.train, data.pair_temperature, tc.batch_tokens, seed=tc.seed,
                                             max_sentences=tc.batch_sentences)
    if data.spm_alpha == 0:
        return BatchIterator.from_dataset(corpus.train, tc.batch_tokens, shuffle=True, seed=tc.seed,
                                          max_sentences=tc.batch_sentences)
    return SampledBatchIterator(corpus, data, tc.batch_tokens, seed=tc.seed, max_sentences=tc.batch_sentences)


def epoch_rng(seed: int, epoch: int, side: str, chunk: int) -> random.Random:
    """The generator of one chunk of one side's epoch: a string seed is hashed (SHA-512), the same in every
    process and on every platform."""
    return random.Random(f"nmt-subword-sampling|{seed}|{epoch}|{side}|{chunk}")


def sample_side(texts: Sequence[str], segment: Segmenter, alpha: float, *, seed: int, epoch: int, side: str,
                max_len: int, fallback: Callable[[list[str]], list[list[int]]]) -> list[list[int]]:
    """One side's sampled ids for ``epoch``, in corpus order; a segmentation longer than ``max_len`` (or empty) is
    replaced by ``fallback``'s deterministic one (``fallback``: texts -> ids)."""
    ids: list[list[int]] = []
    for chunk, start in enumerate(range(0, len(texts), CHUNK)):
        ids += sample_all(texts[start : start + CHUNK], segment, alpha, epoch_rng(seed, epoch, side, chunk))
    redo = [i for i, x in enumerate(ids) if not 0 < len(x) <= max_len]
    for i, fixed in zip(redo, fallback([texts[i] for i in redo]) if redo else [], strict=True):
        ids[i] = fixed
    return ids


class SampledBatchIterator(BatchIterator):
    """Epochs of token batches whose pieces on the ``data.spm_sample`` side(s) are sampled for each epoch; the
    other side keeps its deterministic pieces. Holds the training texts and one epoch's ids in memory."""

    def __init__(self, corpus: Corpus, cfg: DataConfig, max_tokens: int, *, seed: int,
                 max_sentences: int = 0) -> None:
        sides = ["src", "tgt"] if cfg.spm_sample == SpmSample.both else [str(cfg.spm_sample)]
        if "src" not in corpus.train.column_names:
            raise NMTError("data.spm_alpha > 0 needs the training texts: prepare the corpus with that config")
        fixed = {side: [] if side in sides else list(corpus.train[f"{side}_ids"]) for side in ("src", "tgt")}
        super().__init__(fixed["src"], fixed["tgt"], max_tokens, shuffle=True, seed=seed,
                         max_sentences=max_sentences)
        tok = corpus.tokenizer
        self.cfg, self.sides, self.sampled_epoch = cfg, sides, -1
        self.texts = {side: list(TextColumn(corpus.train, side)) for side in sides}
        self.encoders = {"src": tok.encode_src, "tgt": tok.encode_tgt}
        models = {"src": tok.src_model, "tgt": tok.tgt_model}
        self.segmenters = {side: segmenter(models[side], cfg.spm_nbest) for side in sides}
        for side, segment in self.segmenters.items():
            sample = self.texts[side][:CHECKED]
            undropped = sample_all(sample, segment, 0.0, random.Random(0))
            if isinstance(segment, BpeDropout) and undropped != self.encoders[side](sample):
                raise NMTError("data.spm_alpha: BPE-dropout does not reproduce this sentencepiece version's "
                               f"segmentation of the {side} side; set data.spm_alpha=0")
        log.info("data.spm_alpha=%g: %s pieces sampled anew each epoch (%s)", cfg.spm_alpha, "+".join(sides),
                 next(iter(self.segmenters.values())).name)

    def epoch(self, epoch: int) -> list[list[int]]:
        """The batches of ``epoch`` over its sampled pieces (sampled now unless they are the current epoch's);
        :meth:`make` then builds batches from them."""
        if epoch != self.sampled_epoch:
            self._sample(epoch)
        return super().epoch(epoch)

    def _sample(self, epoch: int) -> None:
        """Replace the sampled sides' ids and lengths by ``epoch``'s."""
        for side in self.sides:
            ids = sample_side(self.texts[side], self.segmenters[side], self.cfg.spm_alpha, seed=self.seed,
                              epoch=epoch, side=side, max_len=self.cfg.max_len, fallback=self.encoders[side])
            setattr(self, side, ids)
            setattr(self, f"{side}_lens", np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)))
        self.sampled_epoch = epoch
