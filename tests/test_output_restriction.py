"""Search over the target pieces seen in training (TranslationModel.restrict_output): the scores of the kept
pieces, the one row that stands for the left-out ones, and the search's output against the whole vocabulary."""

from __future__ import annotations

from dataclasses import replace

import datasets
import pytest
import torch

from nmt.config import ModelConfig
from nmt.data.batching import collate
from nmt.data.prepare import Corpus
from nmt.data.tokenizer import EOS
from nmt.decoding.quantize import quantize
from nmt.decoding.search import beam_search, greedy, max_lengths
from nmt.model import build_model
from nmt.model.base import TranslationModel

V_S, V_T = 23, 30
KEPT = torch.tensor([5, 7, 8, 11, 12, 13, 17, 20, 21, 26])  # the specials 0-3 are added by restrict_output
LEFT_OUT = sorted(set(range(4, V_T)) - set(KEPT.tolist()))


def _model(arch: str, seed: int = 0, alike: bool = True) -> TranslationModel:
    """A small model; ``alike``: the left-out pieces' output rows are equal and improbable, as training leaves
    the rows of pieces it never sees (they only ever learn to be improbable)."""
    torch.manual_seed(seed)
    cfg = replace(ModelConfig(), arch=arch, emb_dim=10, hidden_dim=14, maxout_dim=6, attention_dim=8, dropout=0.0,
                  init="torch")
    model = build_model(cfg, V_S, V_T).eval()
    with torch.no_grad():
        model.decoder.out.bias[EOS] += 1.0  # some hypotheses end before the cap
        if alike:
            model.decoder.out.weight[LEFT_OUT] = model.decoder.out.weight[LEFT_OUT[0]].clone()
            model.decoder.out.bias[LEFT_OUT] = -1.0
    return model


def _batch():
    g = torch.Generator().manual_seed(3)
    src = [torch.randint(4, V_S, (n,), generator=g).tolist() for n in (5, 2, 7, 4)]
    return collate(src, [[4]] * 4, range(4))


@pytest.mark.parametrize("arch", ["cho2014", "rnnsearch"])
def test_kept_pieces_score_as_with_the_whole_output_layer(arch: str) -> None:
    model, b = _model(arch), _batch()
    prev = torch.tensor([2, 5, 11, 26])
    full_logits = model.step(prev, model.encode(b.src, b.src_len), normalize=False).scores
    full_logp, _, _ = model.step(prev, model.encode(b.src, b.src_len))
    model.restrict_output(KEPT)
    ids = model.output_ids
    assert ids[:4].tolist() == [0, 1, 2, 3] and ids.tolist() == sorted(ids.tolist())
    assert set(ids.tolist()) == set(range(4)) | set(KEPT.tolist())
    logits = model.step(prev, model.encode(b.src, b.src_len), normalize=False).scores
    logp, _, _ = model.step(prev, model.encode(b.src, b.src_len))
    assert logits.shape == logp.shape == (4, len(ids))
    torch.testing.assert_close(logits, full_logits[:, ids])
    # the left-out pieces' probability mass is still in the normalisation: one row stands for them
    torch.testing.assert_close(logp, full_logp[:, ids], atol=1e-5, rtol=0)
    assert float(logp.detach().exp().sum(-1).max()) < 1.0 - 1e-3  # their mass is not given to the kept pieces
    model.restrict_output(None)
    assert model.output_ids is None and model.decoder.out_search is None
    torch.testing.assert_close(model.step(prev, model.encode(b.src, b.src_len))[0], full_logp)


@pytest.mark.parametrize("arch", ["cho2014", "rnnsearch"])
def test_search_over_the_kept_pieces_equals_search_over_all(arch: str) -> None:
    model, b = _model(arch, seed=1), _batch()
    caps = max_lengths(b.src_len, 2.0, extra=6)
    full_beam = beam_search(model, b.src, b.src_len, caps, beam=4, alpha=1.0, n_best=4)
    full_greedy = greedy(model, b.src, b.src_len, caps)
    assert not any(t in LEFT_OUT for hs in full_beam for h in hs for t in h.tokens)  # they are improbable
    model.restrict_output(KEPT)
    beams = beam_search(model, b.src, b.src_len, caps, beam=4, alpha=1.0, n_best=4)
    assert [[h.tokens for h in hs] for hs in beams] == [[h.tokens for h in hs] for hs in full_beam]
    for hs, full in zip(beams, full_beam, strict=True):
        for h, f in zip(hs, full, strict=True):
            assert abs(h.logprob - f.logprob) < 1e-4
    assert [h.tokens for h in greedy(model, b.src, b.src_len, caps)] == [h.tokens for h in full_greedy]


def test_search_never_writes_a_left_out_piece() -> None:
    model, b = _model("rnnsearch", seed=2, alike=False), _batch()
    with torch.no_grad():
        model.decoder.out.bias[LEFT_OUT] += 5.0  # the whole layer would rather write these
    caps = max_lengths(b.src_len, 2.0, extra=6)
    assert any(t in LEFT_OUT for h in greedy(model, b.src, b.src_len, caps) for t in h.tokens)
    model.restrict_output(KEPT)
    kept = set(model.output_ids.tolist())
    assert all(t in kept for h in greedy(model, b.src, b.src_len, caps) for t in h.tokens)
    beams = beam_search(model, b.src, b.src_len, caps, beam=3, n_best=3)
    assert all(t in kept for hs in beams for h in hs for t in h.tokens)


def test_int8_quantization_keeps_the_restriction() -> None:
    model, b = _model("rnnsearch", seed=3), _batch()
    model.restrict_output(KEPT)
    q = quantize(model, "int8")
    assert torch.equal(q.output_ids, model.output_ids) and type(q.decoder.out_search) is not torch.nn.Linear
    caps = max_lengths(b.src_len, 2.0, extra=6)
    assert [h.tokens for h in greedy(q, b.src, b.src_len, caps)] == [h.tokens for h in
                                                                    greedy(model, b.src, b.src_len, caps)]


def test_pieces_outside_the_vocabulary_are_refused() -> None:
    model = _model("cho2014")
    with pytest.raises(ValueError, match="outside the target vocabulary"):
        model.restrict_output(torch.tensor([5, V_T]))


def test_target_pieces_are_those_of_the_kept_pairs_only() -> None:
    """The length filter selects rows without rewriting the Arrow table: a dropped pair's pieces do not count."""
    ds = datasets.Dataset.from_dict({"tgt_ids": [[5, 6], [7, 8, 9], [10, 5]], "tgt_len": [2, 3, 2]})
    kept = ds.filter(lambda n: [x < 3 for x in n], input_columns=["tgt_len"], batched=True)
    corpus = Corpus(tokenizer=None, train=kept, dev_src=[], dev_tgt=[], dev_refs=[], n_train_raw=3)
    assert corpus.target_pieces == [5, 6, 10]
