"""Evaluation: BLEU, chrF and TER with sacrebleu, paired tests, and scoring of pairs."""
