"""``decode.coverage=beta`` (Wu et al. 2016): a finished hypothesis' score gains beta * sum over the real source
pieces of log(min(its summed attention there, 1)); beta 0, or a model without attention, changes nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from helpers import V_S, V_T, model_cfg, random_batch, tiny_model

from nmt.data.batching import collate
from nmt.data.tokenizer import EOS
from nmt.decoding.rows import length_penalty
from nmt.decoding.search import beam_search, max_lengths
from nmt.model import build_model


def _rnnsearch():
    torch.manual_seed(11)
    model = build_model(replace(model_cfg(arch="rnnsearch", attention_dim=9), dropout=0.0), V_S, V_T).eval()
    with torch.no_grad():
        model.decoder.out.bias[EOS] += 2.5  # an untrained model that ends its sentences: hypotheses end with EOS
    return model


@torch.no_grad()
def test_the_score_carries_the_coverage_penalty_of_its_attention() -> None:
    model, b, beta = _rnnsearch(), random_batch(), 0.4
    caps = max_lengths(b.src_len, 1.5, 3)
    hyps = beam_search(model, b.src, b.src_len, caps, beam=3, n_best=3, alpha=1.0, coverage=beta)
    checked = 0
    for i, sentence in enumerate(hyps):
        src = b.src[i, : b.src_len[i]].tolist()
        for h in sentence:
            if len(h.tokens) + 1 >= int(caps[i]):
                continue  # capped: no EOS step
            weights = model.attention_and_features(collate([src], [h.tokens], [0]))[1][0]  # (T+1, S)
            penalty = beta * weights.sum(0).clamp(1e-10, 1.0).log().sum()
            lp = float(length_penalty(len(h.tokens) + 1, 1.0))
            assert h.score == pytest.approx(h.logprob / lp + float(penalty), abs=1e-4)
            checked += 1
    assert checked


def test_beta_zero_and_models_without_attention_are_unchanged() -> None:
    b = random_batch()
    caps = max_lengths(b.src_len, 1.5, 3)
    for model in (_rnnsearch(), tiny_model(seed=3)):
        plain = beam_search(model, b.src, b.src_len, caps, beam=3, n_best=2)
        zero = beam_search(model, b.src, b.src_len, caps, beam=3, n_best=2, coverage=0.0)
        assert [[(h.tokens, h.score) for h in s] for s in plain] == [[(h.tokens, h.score) for h in s] for s in zero]
    cho = tiny_model(seed=3)
    plain = beam_search(cho, b.src, b.src_len, caps, beam=3, n_best=2)
    assert [[h.score for h in s] for s in beam_search(cho, b.src, b.src_len, caps, beam=3, n_best=2, coverage=1.0)
            ] == [[h.score for h in s] for s in plain]
