"""Tests for :mod:`nmt.model.attention` with random tensors and no model around it."""

from __future__ import annotations

import torch

from nmt.model.attention import AdditiveAttention


def test_attention_is_a_distribution_over_real_tokens() -> None:
    torch.manual_seed(0)
    att = AdditiveAttention(6, 8, 5)
    ann = torch.randn(3, 4, 8)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    keys_in = att.project_keys(ann)
    ctx, w = att(torch.randn(3, 6), keys_in, ann, mask)
    assert torch.allclose(w.sum(-1), torch.ones(3))
    assert (w[~mask] == 0).all() and (w[mask] > 0).all()
    assert torch.allclose(ctx, (w.unsqueeze(-1) * ann).sum(1), atol=1e-6)


def test_keys_are_projected_once_and_padding_gets_no_weight_whatever_it_holds() -> None:
    torch.manual_seed(1)
    att = AdditiveAttention(6, 8, 5)
    ann, query = torch.randn(2, 5, 8), torch.randn(2, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    ctx, w = att(query, att.project_keys(ann), ann, mask)
    noisy = ann.clone()
    noisy[0, 3:] = 1e3  # garbage on padded positions changes nothing
    ctx2, w2 = att(query, att.project_keys(noisy), noisy, mask)
    torch.testing.assert_close(ctx2, ctx)
    torch.testing.assert_close(w2, w)
    assert w.shape == (2, 5) and ctx.shape == (2, 8)
