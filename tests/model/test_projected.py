"""The RNNsearch search step with the context products taken on the annotations (nmt.model.projected) equals
the decoder's own step, and only models with a torch GRUCell and float layers take it."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from nmt.config import ModelConfig
from nmt.data.batching import collate
from nmt.data.tokenizer import BOS
from nmt.model import build_model
from nmt.model.decoders import AttentionState
from nmt.model.projected import ProjectedState, projected_step
from nmt.quantize import quantize

SRC = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]


def _model(seed: int = 0, **kw):
    torch.manual_seed(seed)
    cfg = replace(ModelConfig(), arch="rnnsearch", emb_dim=12, hidden_dim=16, attention_dim=10, maxout_dim=8,
                  dropout=0.0, init="torch", **kw)
    return build_model(cfg, 31, 27).eval()


@torch.no_grad()
def test_projected_step_equals_the_decoder_step() -> None:
    model = _model()
    b = collate(SRC, [[5]] * 3, range(3))
    annotations, bwd_first = model.encoder(b.src, b.src_len)
    plain = model.decoder.start(annotations, bwd_first, b.src != 0)
    fast = model.encode(b.src, b.src_len)
    assert isinstance(fast, ProjectedState) and fast.values.shape == (3, 5, 3 * 16 + 8 * 2)
    prev = torch.full((3,), BOS)
    for t in range(6):
        logits, plain, alpha = model.decoder.step(prev, plain)
        f_logits, fast, f_alpha = projected_step(model.decoder, prev, fast)
        torch.testing.assert_close(f_logits, logits, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(fast.s, plain.s, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(f_alpha, alpha)
        prev = logits.argmax(-1) if t % 2 else torch.tensor([7, 9, 11])


@pytest.mark.parametrize("kw", [{"cell": "equations"}, {"cell_type": "lstm"}, {"cell_type": "elman"},
                                {"cell": "equations", "reset_after": False}])
def test_other_cells_keep_the_decoder_step(kw: dict) -> None:
    model = _model(**kw)
    b = collate(SRC, [[5]] * 3, range(3))
    assert isinstance(model.encode(b.src, b.src_len), AttentionState)


def test_an_int8_model_keeps_the_decoder_step() -> None:
    model = quantize(_model(), "int8")
    b = collate(SRC, [[5]] * 3, range(3))
    assert isinstance(model.encode(b.src, b.src_len), AttentionState)


@torch.no_grad()
def test_previous_word_table_equals_the_products_and_follows_weight_changes() -> None:
    model = _model(seed=1)
    b = collate(SRC, [[5]] * 3, range(3))
    pieces = torch.arange(27)
    prev = torch.tensor([2, 9, 26])
    for _ in range(2):
        state = model.encode(b.src, b.src_len)
        logits, new, _ = projected_step(model.decoder, prev, state)
        t_logits, t_new, _ = projected_step(model.decoder, prev, state, pieces)
        torch.testing.assert_close(t_logits, logits, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(t_new.s, new.s, atol=1e-5, rtol=1e-5)
        model.decoder.embed.weight.mul_(1.5)  # in place: the second round fails if the table is not rebuilt
