"""The chunked output layer and cross-entropy (nmt.model.loss) equals F.cross_entropy of F.linear, in value and
in every gradient, and the models' training loss uses it."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from nmt.config import ModelConfig
from nmt.data.batching import collate
from nmt.model import build_model
from nmt.model.loss import output_cross_entropy


def _inputs(bias: bool, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(10, 6, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(9, 6, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(9, generator=g, dtype=torch.float64, requires_grad=True) if bias else None
    return f, w, b, torch.randint(0, 9, (10,), generator=g)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("chunk", [3, 10, 64])
def test_equals_cross_entropy_of_the_linear_layer(smoothing: float, bias: bool, chunk: int) -> None:
    f, w, b, y = _inputs(bias)
    mine = output_cross_entropy(f, w, b, y, smoothing, chunk)
    grads = torch.autograd.grad(2.5 * mine, [t for t in (f, w, b) if t is not None])
    ref = F.cross_entropy(F.linear(f, w, b), y, reduction="sum", label_smoothing=smoothing)
    ref_grads = torch.autograd.grad(2.5 * ref, [t for t in (f, w, b) if t is not None])
    torch.testing.assert_close(mine, ref)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want)


def test_gradcheck() -> None:
    f, w, b, y = _inputs(True, seed=1)
    assert torch.autograd.gradcheck(lambda f, w, b: output_cross_entropy(f, w, b, y, 0.1, 4), (f, w, b))


@pytest.mark.parametrize("tie", [False, True])
def test_model_loss_and_gradients_equal_the_plain_expression(tie: bool) -> None:
    torch.manual_seed(0)
    cfg = replace(ModelConfig(), arch="rnnsearch", emb_dim=8, hidden_dim=10, attention_dim=6, maxout_dim=8,
                  dropout=0.0, init="torch", tie_embeddings=tie)
    model = build_model(cfg, 17, 15).double()
    b = collate([[5, 6, 7], [8, 9]], [[5, 6, 7, 8], [9]], range(2))
    loss = model.loss(b, 0.1)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    logits, gold = model.target_logits(b)
    ref = F.cross_entropy(logits, gold, reduction="sum", label_smoothing=0.1)
    ref_grads = torch.autograd.grad(ref, list(model.parameters()))
    torch.testing.assert_close(loss, ref)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want)
