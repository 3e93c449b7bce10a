"""Invariant tests for :mod:`nmt.model.encoders`: shapes, zero padding, independence from padding and batch
mates, and reading right to left (the bidirectional encoder is covered through RNNsearch, test_rnnsearch.py)."""

from __future__ import annotations

import pytest
import torch
from helpers import SRC_LENS, H, random_batch, sub_batch, tiny_model

from nmt.data.tokenizer import PAD


@pytest.fixture(params=["fused", "equations"])
def cell(request: pytest.FixtureRequest) -> str:
    return request.param


def test_encoder_shapes_and_zero_padding(cell: str) -> None:
    model, b = tiny_model(cell=cell), random_batch()
    with torch.no_grad():
        states, c = model.encoder(b.src, b.src_len)
    assert states.shape == (len(SRC_LENS), max(SRC_LENS), H) and c.shape == (len(SRC_LENS), H)
    assert torch.all(states[~b.src_mask] == 0)
    assert torch.all(c.abs() < 1)  # c = tanh(V h_N)


def test_encoder_ignores_extra_padding(cell: str) -> None:
    model, b = tiny_model(cell=cell), random_batch()
    wide = torch.cat([b.src, torch.full((b.src.shape[0], 4), PAD)], dim=1)
    with torch.no_grad():
        states, c = model.encoder(b.src, b.src_len)
        states_w, c_w = model.encoder(wide, b.src_len)
    torch.testing.assert_close(states_w[:, : b.src.shape[1]], states, rtol=0, atol=1e-6)
    assert torch.all(states_w[:, b.src.shape[1]:] == 0)
    torch.testing.assert_close(c_w, c, rtol=0, atol=1e-6)


def test_encoder_result_does_not_depend_on_batch_mates(cell: str) -> None:
    model, b = tiny_model(cell=cell), random_batch()
    short = 1  # length 2, batched with a length-7 sentence
    alone = sub_batch(b, [short])
    with torch.no_grad():
        states, c = model.encoder(b.src, b.src_len)
        states_1, c_1 = model.encoder(alone.src, alone.src_len)
    n = SRC_LENS[short]
    torch.testing.assert_close(states[short, :n], states_1[0, :n], rtol=0, atol=1e-6)
    torch.testing.assert_close(c[short], c_1[0], rtol=0, atol=1e-6)


def test_reverse_source_equals_encoding_the_reversed_sentence() -> None:
    model, b = tiny_model(reverse_source=False), random_batch()
    rev = tiny_model(reverse_source=True)
    rev.load_state_dict(model.state_dict())
    with torch.no_grad():
        _, c_rev = rev.encoder(b.src, b.src_len)
        for i, n in enumerate(b.src_len.tolist()):
            backwards = b.src[i, :n].flip(0).unsqueeze(0)
            _, c = model.encoder(backwards, b.src_len[i : i + 1])
            torch.testing.assert_close(c_rev[i], c[0], atol=1e-6, rtol=0)
