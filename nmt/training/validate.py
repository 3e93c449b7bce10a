"""Validation during training: teacher-forced dev cross-entropy, and BLEU of greedy translations decoded
through nmt.decoding.search like any other translation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from nmt.choices import DecodeMethod
from nmt.config import DecodeConfig, TrainConfig
from nmt.data.batching import BatchIterator
from nmt.data.prepare import Corpus
from nmt.decoding.search import decode_best
from nmt.evaluation.metrics import bleu
from nmt.model.base import TranslationModel


@dataclass
class DevScores:
    """One validation: mean loss per target piece (nats), its perplexity, greedy BLEU and a first translation."""

    loss: float
    ppl: float
    bleu: float
    example: str


@torch.no_grad()
def dev_cross_entropy(model: TranslationModel, corpus: Corpus, batch_tokens: int) -> tuple[float, int]:
    """Teacher-forced loss summed over the dev split (nats) and the number of target tokens it covers."""
    device = next(model.parameters()).device
    dev = BatchIterator(corpus.dev_src, corpus.dev_tgt, batch_tokens, shuffle=False, seed=0)
    total, tokens = 0.0, 0
    for idx in dev.epoch(0):
        b = dev.make(idx).to(device)
        total += float(model.loss(b))
        tokens += b.n_tgt_tokens
    return total, tokens


def greedy_config(cfg: TrainConfig) -> DecodeConfig:
    """How validation decodes: greedy, with the training config's length cap and batch size."""
    return DecodeConfig(method=DecodeMethod.greedy, max_len_ratio=cfg.eval_max_len_ratio, batch_tokens=cfg.batch_tokens)


@torch.no_grad()
def validate(model: TranslationModel, corpus: Corpus, cfg: TrainConfig) -> DevScores:
    """Dev loss and perplexity, and BLEU (sacrebleu, detokenized) of greedy translations of the first
    ``cfg.eval_max_sentences`` dev sentences (all when 0). Leaves the model in training mode."""
    model.eval()
    total, tokens = dev_cross_entropy(model, corpus, cfg.batch_tokens)
    n = cfg.eval_max_sentences or len(corpus.dev_src)
    texts = corpus.tokenizer.decode_tgt(decode_best(model, corpus.dev_src[:n], greedy_config(cfg)))
    model.train()
    loss = total / max(tokens, 1)
    return DevScores(loss, math.exp(min(loss, 50)), bleu(texts, corpus.dev_refs[:n]).score, texts[0] if texts else "")
