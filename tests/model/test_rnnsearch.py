"""RNNsearch invariants: attention is a distribution over real tokens, padding changes nothing, and the
step-by-step decoder computes the same probabilities as teacher forcing."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from nmt.config import ModelConfig
from nmt.data.batching import collate
from nmt.data.tokenizer import PAD
from nmt.decoding.search import beam_search, greedy
from nmt.model import build_model
from nmt.model.rnnsearch import RNNSearch

V_S, V_T = 31, 27
SRC = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]
TGT = [[5, 6, 7], [8, 9, 10, 11, 12], [13]]


def _model(seed: int = 0, **kw) -> RNNSearch:
    torch.manual_seed(seed)
    cfg = replace(ModelConfig(), arch="rnnsearch", emb_dim=12, hidden_dim=16, attention_dim=10, maxout_dim=8,
                  dropout=0.0, init="torch", **kw)
    model = build_model(cfg, V_S, V_T)
    assert isinstance(model, RNNSearch)
    return model.eval()


def _pad_more(batch, extra_src: int, extra_tgt: int):
    """The same batch with extra padding columns on both sides."""
    pad = lambda x, n: torch.cat([x, x.new_full((x.shape[0], n), PAD)], dim=1)  # noqa: E731
    return replace(batch, src=pad(batch.src, extra_src), tgt_in=pad(batch.tgt_in, extra_tgt),
                   tgt_out=pad(batch.tgt_out, extra_tgt))


def test_model_attention_sums_to_one_and_ignores_padding() -> None:
    batch = collate(SRC, TGT, range(3))
    _, w = _model().attention_and_features(batch)  # (B, T, S)
    assert w.shape == (3, batch.tgt_in.shape[1], batch.src.shape[1])
    assert torch.allclose(w.sum(-1), torch.ones(w.shape[:2]), atol=1e-6)
    assert (w.masked_select((batch.src == PAD).unsqueeze(1).expand_as(w)) == 0).all()


@pytest.mark.parametrize("cell", ["fused", "equations"])
def test_extra_padding_changes_nothing_on_real_tokens(cell: str) -> None:
    model = _model(cell=cell)
    batch = collate(SRC, TGT, range(3))
    wider = _pad_more(batch, 4, 3)
    real = batch.tgt_out != PAD
    with torch.no_grad():
        feats, w = model.attention_and_features(batch)
        feats2, w2 = model.attention_and_features(wider)
    t, s = batch.tgt_in.shape[1], batch.src.shape[1]
    assert torch.allclose(feats[real], feats2[:, :t][real], atol=1e-6)
    assert torch.allclose(w, w2[:, :t, :s], atol=1e-6) and (w2[:, :, s:] == 0).all()
    assert torch.allclose(model.score(batch), model.score(wider), atol=1e-5)
    assert torch.allclose(model.loss(batch), model.loss(wider), atol=1e-4)


def test_fused_and_equations_cells_compute_the_same_model() -> None:
    fused, eq = _model(cell="fused"), _model(cell="equations")
    eq.load_state_dict(fused.state_dict())
    batch = collate(SRC, TGT, range(3))
    with torch.no_grad():
        assert torch.allclose(fused.score(batch), eq.score(batch), atol=1e-5)


@pytest.mark.parametrize("cell", ["fused", "equations"])  # search's projected step, and the decoder's own
def test_step_by_step_decoding_matches_teacher_forcing(cell: str) -> None:
    model = _model(cell=cell)
    batch = collate(SRC, TGT, range(3))
    with torch.no_grad():
        expected = model.score(batch)
        state = model.encode(batch.src, batch.src_len)
        total = torch.zeros(3)
        for t in range(batch.tgt_in.shape[1]):
            logp, state, _ = model.step(batch.tgt_in[:, t], state)
            gold = batch.tgt_out[:, t]
            total += logp.gather(1, gold.unsqueeze(1)).squeeze(1) * (gold != PAD)
    assert torch.allclose(total, expected, atol=1e-5)


def test_greedy_equals_beam_of_one_and_beam_rows_are_independent() -> None:
    model = _model(seed=3)
    batch = collate(SRC, TGT, range(3))
    cap = batch.src_len + 5
    g = [h.tokens for h in greedy(model, batch.src, batch.src_len, cap)]
    b1 = beam_search(model, batch.src, batch.src_len, cap, beam=1, alpha=0.0)
    assert [h[0].tokens for h in b1] == g
    together = beam_search(model, batch.src, batch.src_len, cap, beam=4)
    for i in range(3):
        alone = beam_search(model, batch.src[i:i + 1, : int(batch.src_len[i])], batch.src_len[i:i + 1],
                            cap[i:i + 1], beam=4)
        assert [h.tokens for h in alone[0]] == [h.tokens for h in together[i]]


def test_unknown_arch_is_refused() -> None:
    with pytest.raises(ValueError, match="model.arch"):
        build_model(replace(ModelConfig(), arch="transformer"), V_S, V_T)
