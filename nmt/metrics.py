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


def corpus_scores(hyps: Sequence[str], refs: Sequence[str], *, bootstrap: int = 0) -> dict[str, dict]:
    """BLEU, chrF and TER with their sacrebleu signatures; with ``bootstrap`` resamples, a 95% BLEU interval."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    out: dict[str, dict] = {}
    for name, metric in (("bleu", sacrebleu.BLEU()), ("chrf", sacrebleu.CHRF()), ("ter", sacrebleu.TER())):
        kwargs = {"n_bootstrap": bootstrap} if bootstrap > 0 and name == "bleu" else {}
        res = metric.corpus_score(list(hyps), [list(refs)], **kwargs)
        out[name] = {"score": round(res.score, 2), "signature": str(metric.get_signature())}
        if kwargs:
            out[name]["ci95"] = round(res._ci, 2)
            out[name]["mean"] = round(res._mean, 2)
    return out
