"""Tests for :mod:`nmt.evaluation.metrics`: lowercased BLEU and the paired bootstrap comparison on toy systems."""

from __future__ import annotations

import random

from nmt.evaluation.metrics import corpus_scores, paired_bootstrap

WORDS = "the a cat dog sat ran on under mat rug big small red".split()


def _toy(n: int = 200) -> tuple[list[str], list[str], list[str]]:
    """References, a close system (20% of words changed) and a far one (50%)."""
    rng = random.Random(0)
    refs = [" ".join(rng.choice(WORDS) for _ in range(8)) for _ in range(n)]

    def noisy(p: float) -> list[str]:
        return [" ".join(w if rng.random() > p else rng.choice(WORDS) for w in r.split()) for r in refs]

    return refs, noisy(0.2), noisy(0.5)


def test_the_better_system_wins_significantly_and_a_copy_does_not() -> None:
    refs, close, far = _toy()
    better = paired_bootstrap(close, far, refs, resamples=300)
    assert better["bleu"] > better["baseline_bleu"] + 20 and better["p_value"] < 0.01
    assert abs(better["mean"] - better["bleu"]) < 2 and better["ci95"] > 0
    same = paired_bootstrap(far, list(far), refs, resamples=300)
    assert same["p_value"] == 1.0 and same["bleu"] == same["baseline_bleu"]


def test_two_systems_of_equal_quality_are_not_called_different() -> None:
    refs, _, far = _toy()
    rng = random.Random(1)
    other = [" ".join(w if rng.random() > 0.5 else rng.choice(WORDS) for w in r.split()) for r in refs]
    assert paired_bootstrap(other, far, refs, resamples=300)["p_value"] > 0.05


def test_lowercase_bleu_ignores_case_only() -> None:
    refs = ["The Cat sat on the Mat .", "A dog ran ."]
    hyps = ["the cat sat on the mat .", "a dog ran ."]
    assert corpus_scores(hyps, refs)["bleu"]["score"] < 100
    scores = corpus_scores(hyps, refs, lowercase=True)["bleu"]
    assert scores["score"] == 100.0 and "case:lc" in scores["signature"]
