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


def corpus_scores(hyps: Sequence[str], refs: Sequence[str], *, bootstrap: int = 0, lowercase: bool = False
                  ) -> dict[str, dict]:
    """BLEU, chrF and TER with their sacrebleu signatures; with ``bootstrap`` resamples, a 95% BLEU interval;
    ``lowercase``: case-insensitive BLEU (comparable with published lowercased scores)."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    out: dict[str, dict] = {}
    for name, metric in (("bleu", sacrebleu.BLEU(lowercase=lowercase)), ("chrf", sacrebleu.CHRF()),
                         ("ter", sacrebleu.TER())):
        kwargs = {"n_bootstrap": bootstrap} if bootstrap > 0 and name == "bleu" else {}
        res = metric.corpus_score(list(hyps), [list(refs)], **kwargs)
        out[name] = {"score": round(res.score, 2), "signature": str(metric.get_signature())}
        if kwargs:
            out[name]["ci95"] = round(res._ci, 2)
            out[name]["mean"] = round(res._mean, 2)
    return out


def paired_bootstrap(system: Sequence[str], baseline: Sequence[str], refs: Sequence[str], *, resamples: int = 1000,
                     lowercase: bool = False) -> dict[str, float]:
    """Is ``system`` better than ``baseline`` in BLEU? sacrebleu's paired bootstrap resampling (Koehn 2004): both
    systems' BLEU, the system's mean and 95% interval over the resamples, and the p-value of the difference."""
    from sacrebleu.significance import PairedTest

    if not len(system) == len(baseline) == len(refs):
        raise ValueError(f"{len(system)} system, {len(baseline)} baseline lines for {len(refs)} references")
    if list(system) == list(baseline):  # sacrebleu's strict count would call identical outputs significant
        score = round(sacrebleu.BLEU(lowercase=lowercase).corpus_score(list(system), [list(refs)]).score, 2)
        return {"baseline_bleu": score, "bleu": score, "mean": score, "ci95": 0.0, "p_value": 1.0}
    test = PairedTest([("baseline", list(baseline)), ("system", list(system))],
                      {"BLEU": sacrebleu.BLEU(lowercase=lowercase)}, [list(refs)], test_type="bs", n_samples=resamples)
    _, results = test()
    base, sys_ = results["BLEU"]
    return {"baseline_bleu": round(float(base.score), 2), "bleu": round(float(sys_.score), 2),
            "mean": round(float(sys_.mean), 2), "ci95": round(float(sys_.ci), 2), "p_value": float(sys_.p_value)}
