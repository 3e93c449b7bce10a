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


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.float() - want.float()).norm() / want.float().norm()).item()


@pytest.mark.parametrize("bias", [True, False])
def test_bf16_autocast_equals_autocasts_linear_and_cross_entropy(bias: bool) -> None:
    """Under bf16 autocast: bf16 products, fp32 loss and gradients, as autocast's F.linear + F.cross_entropy."""
    g = torch.Generator().manual_seed(3)
    f = torch.randn(300, 32, generator=g, requires_grad=True)
    w = (0.3 * torch.randn(50, 32, generator=g)).requires_grad_()
    b = torch.randn(50, generator=g, requires_grad=True) if bias else None
    y = torch.randint(0, 50, (300,), generator=g)
    params = [t for t in (f, w, b) if t is not None]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mine = output_cross_entropy(f, w, b, y, 0.1, 64)
        ref = F.cross_entropy(F.linear(f, w, b), y, reduction="sum", label_smoothing=0.1)
    exact = F.cross_entropy(F.linear(f, w, b), y, reduction="sum", label_smoothing=0.1)
    grads, ref_grads = torch.autograd.grad(mine, params), torch.autograd.grad(ref, params)
    exact_grads = torch.autograd.grad(exact, params)
    assert mine.dtype == torch.float32 and all(gr.dtype == torch.float32 for gr in grads)
    assert abs(mine.item() - ref.item()) / ref.item() < 1e-3
    for got, want, true in zip(grads, ref_grads, exact_grads, strict=True):
        # as close to autocast's own result as that is to fp32's: both are bf16 rounding away from it
        assert _relative_error(got, want) < 2e-2
        assert _relative_error(got, true) < 2 * _relative_error(want, true) + 1e-3


def test_other_autocast_dtypes_are_refused() -> None:
    f, w, b, y = _inputs(True)
    with torch.autocast("cpu", dtype=torch.float16), pytest.raises(ValueError, match="float16"):
        output_cross_entropy(f.float(), w.float(), b.float(), y)


def test_model_loss_under_bf16_autocast_equals_the_plain_expression() -> None:
    torch.manual_seed(0)
    cfg = replace(ModelConfig(), arch="rnnsearch", emb_dim=16, hidden_dim=24, attention_dim=12, maxout_dim=16,
                  dropout=0.0, init="torch")
    model = build_model(cfg, 40, 37)
    b = collate([[5, 6, 7, 9, 11], [8, 9]], [[5, 6, 7, 8, 30, 31], [9, 20]], range(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(b, 0.1)
        logits, gold = model.target_logits(b)
        ref = F.cross_entropy(logits, gold, reduction="sum", label_smoothing=0.1)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    ref_grads = torch.autograd.grad(ref, list(model.parameters()))
    assert abs(loss.item() - ref.item()) / ref.item() < 1e-3
    for got, want in zip(grads, ref_grads, strict=True):
        assert got.dtype == torch.float32 and _relative_error(got, want) < 3e-2
