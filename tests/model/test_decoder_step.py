"""The RNNsearch decoder's one search step (AttentionDecoder.step): the context's products taken once on the
annotations for every float cell, the previous word's products from a table of the seen pieces, and both equal
to computing the step from the context itself (teacher forcing: tests/model/test_rnnsearch.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from nmt.config import ModelConfig
from nmt.data.batching import collate
from nmt.data.tokenizer import BOS
from nmt.decoding.quantize import quantize
from nmt.model import build_model

SRC = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]
CELLS = [{}, {"cell": "equations"}, {"cell": "equations", "reset_after": False}, {"cell_type": "lstm"},
         {"cell_type": "elman"}, {"cell_type": "elman", "cell": "equations"}]


def _model(seed: int = 0, **kw):
    torch.manual_seed(seed)
    cfg = replace(ModelConfig(), arch="rnnsearch", emb_dim=12, hidden_dim=16, attention_dim=10, maxout_dim=8,
                  dropout=0.0, init="torch", **kw)
    return build_model(cfg, 31, 27).eval()


@torch.no_grad()
def _teacher_forced(model, tgt: list[list[int]]) -> torch.Tensor:
    """(B, T+1, V) logits of the targets and EOS, from the context computed at every step."""
    batch = collate(SRC, tgt, range(len(SRC)))
    return model.decoder.out(model.features(batch))


@pytest.mark.parametrize("kw", CELLS, ids=lambda kw: "-".join(f"{v}" for v in kw.values()) or "gru")
@torch.no_grad()
def test_every_float_cell_steps_on_the_context_products_and_equals_teacher_forcing(kw: dict) -> None:
    model = _model(**kw)
    b = collate(SRC, [[5]] * 3, range(3))
    state = model.encode(b.src, b.src_len)
    rows = model.cfg.cell_type.gate_blocks * 16 + 8 * 2  # [W_c; C_o] h_j: G*H gate rows and M*P readout rows
    assert state.values.shape == (3, 5, rows)  # not the annotations (2H = 32): the fast form is taken
    tgt = [[7, 9, 11, 20], [8, 8, 3, 4], [26, 5, 6, 7]]
    forced = _teacher_forced(model, tgt)
    prev = torch.full((3,), BOS)
    for t in range(4):
        step = model.step(prev, state, normalize=False)
        torch.testing.assert_close(step.scores, forced[:, t], atol=1e-5, rtol=1e-5)
        assert step.attention.shape == (3, 5)
        state, prev = step.state, torch.tensor([row[t] for row in tgt])


def test_an_int8_model_mixes_the_annotations_themselves() -> None:
    model = quantize(_model(), "int8")
    b = collate(SRC, [[5]] * 3, range(3))
    assert model.encode(b.src, b.src_len).values.shape == (3, 5, 32)


@torch.no_grad()
def test_previous_word_table_equals_the_products_and_goes_with_the_restriction() -> None:
    model = _model(seed=1)
    b = collate(SRC, [[5]] * 3, range(3))
    prev = torch.tensor([2, 9, 26])
    model.restrict_output(torch.arange(27))
    assert model.decoder.word_rows.shape == (27, 3 * 16 + 8 * 2)
    with_table = model.step(prev, model.encode(b.src, b.src_len))
    rows, row_of = model.decoder.word_rows, model.decoder.word_row_of
    model.decoder.word_rows = model.decoder.word_row_of = None  # the products taken at every step instead
    plain = model.step(prev, model.encode(b.src, b.src_len))
    torch.testing.assert_close(with_table.scores, plain.scores, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(with_table.state.s, plain.state.s, atol=1e-5, rtol=1e-5)
    model.decoder.word_rows, model.decoder.word_row_of = rows, row_of
    model.restrict_output(None)
    assert model.decoder.word_rows is None and model.decoder.out_search is None
