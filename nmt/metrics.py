"""Corpus-level scores with sacrebleu on detokenized text (never on subword pieces)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sacrebleu


@dataclass
class Score:
    name: str
    score: float
    signature: str


def bleu(hyps: Sequence[str], refs: Sequence[str]) -> Score:
    """Corpus BLEU (sacrebleu defaults: 13a tokenization, cased) with its signature."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    metric = sacrebleu.BLEU()
    return Score("BLEU", metric.corpus_score(list(hyps), [list(refs)]).score, str(metric.get_signature()))


def chrf(hyps: Sequence[str], refs: Sequence[str]) -> Score:
    """Corpus chrF with its signature."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    metric = sacrebleu.CHRF()
    return Score("chrF", metric.corpus_score(list(hyps), [list(refs)]).score, str(metric.get_signature()))
